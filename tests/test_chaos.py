"""The chaos harness (bench/chaos), short: nothing the design says must arrive may be lost.

One run, shared by the tests below: two stations in threads and one subprocess station on
simulated chips, nine simulated minutes at 15x (about 40 s of wall time), against a real
Mosquitto with the repo's ACL. On the way: every kind of chip fault several times, two broker
restarts, two spells of the broker's port refusing connections, three SIGKILLs of the
subprocess station (two of them followed by a damaged outbox, one while its disk is full),
a full disk under one in-process station's outbox, two session command floods with panel
button presses, acknowledgements by a staff name, and a restart of the real wall display.
A persistent QoS 1 subscriber and the display are the witnesses; the stations' own events
(the subprocess station's journal, written before each event is stored) are the record of
what was raised.

Separately: a calibration writer SIGKILLed in the middle of saving, at every point of the
save, must leave the old file or the new one, never a torn one; and the check must catch a
writer that writes in place.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bench import chaos
from tests.support.mosquitto import find_mosquitto, find_mosquitto_passwd

TARGET_S = chaos.RECOVERY_TARGET_S  # 2 s


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> chaos.Report:
    if find_mosquitto() is None or find_mosquitto_passwd() is None:
        pytest.skip("mosquitto and mosquitto_passwd are needed (Debian: apt install mosquitto)")
    options = chaos.Options(
        stations=2,
        minutes=9,
        seed=7,
        speed=15,
        quick=True,
        chip_gap_s=8.0,
        workdir=tmp_path_factory.mktemp("chaos"),
    )
    return chaos.run_chaos(options)


def test_no_alert_event_is_lost(report):
    assert report.raised >= 40, "too few alerts for the run to test delivery"
    assert report.lost == [], "\n".join(
        f"{r.station} {r.id} {r.state} {r.code}" for r in report.lost
    )


def test_every_station_had_alerts_delivered_through_the_faults(report):
    for station in ("bench-1", "bench-2", chaos.KILLED_ID):
        assert report.per_station[station]["delivered"] >= 5, report.per_station
    codes = Counter(r.code for r in report.ledger.raised.values())
    assert codes["sensor.fault"] >= 5 and len(codes) >= 3, codes
    # Alerts raised while the broker was away were delivered afterwards, not merely before.
    assert sum(len(v) for v in report.backlog_s.values()) >= 3, report.backlog_s


def test_every_fault_kind_happened(report):
    chip = Counter(f.kind for f in report.chip_faults)
    assert all(chip[kind] >= 2 for kind in chaos.CHIP_FAULTS), chip
    net = Counter(f.kind for f in report.net_faults)
    assert net["broker restart"] == 2 and net["link refused"] == 2 and net["SIGKILL"] == 3, net
    assert net["flood"] == 2 and net["display restart"] == 1 and net["disk full"] == 1, net


def test_duplicates_are_counted_once_per_extra_copy(report):
    for station, row in report.per_station.items():
        unique = row.get("delivered", 0) + row.get("unrecorded", 0)
        assert row.get("received", 0) == unique + row.get("duplicates", 0), (station, row)


def test_the_ledger_counts_a_redelivered_event_as_one_delivery_and_one_duplicate():
    ledger = chaos.Ledger()
    ledger.record_raised("bench-1", "bench-1:1:0001", "raised", "warning", "sensor.fault")
    ledger.record_raised("bench-1", "bench-1:1:0001", "cleared", "warning", "sensor.fault")
    event = {"station": "bench-1", "id": "bench-1:1:0001", "state": "raised", "level": "warning"}
    ledger.record_delivered(event)
    ledger.record_delivered(event)  # a QoS 1 re-send after a reconnect
    row = ledger.summary()["bench-1"]
    assert (row["raised"], row["delivered"], row["duplicates"], row["lost"]) == (2, 1, 1, 1)
    assert [r.state for r in ledger.missing()] == ["cleared"]


def test_chips_deliver_again_within_2_s_of_coming_back(report):
    slow = [f for f in report.chip_faults if f.recovery_s is None or f.recovery_s > TARGET_S]
    assert not slow, [(f.station, f.kind, f.sensor, f.detail, f.recovery_s) for f in slow]
    slow_child = [(k, r) for k, r in report.child_fault_recoveries if r is None or r > TARGET_S]
    assert not slow_child, slow_child


def test_stations_reconnect_within_2_s_of_a_broker_restart(report):
    restarts = [f for f in report.net_faults if f.kind == "broker restart"]
    for fault in restarts:
        assert set(fault.reconnect_s) == {"bench-1", "bench-2"}
        assert all(v is not None and v <= TARGET_S for v in fault.reconnect_s.values()), fault
    # and the alerts raised while it was down reached the witness within 2 s of its return
    assert all(v <= TARGET_S for v in report.backlog_s.get("broker restart", [])), report.backlog_s


def test_a_killed_station_comes_back_and_resends_from_its_outbox(report):
    assert report.restarts[chaos.KILLED_ID] == 3
    assert not report.crashes[chaos.KILLED_ID], report.crashes[chaos.KILLED_ID]
    online = [
        v
        for f in report.net_faults
        if f.kind == "SIGKILL" and not f.overlapped
        for v in f.reconnect_s.values()
    ]
    # How fast is bench.chaos's figure to report; here only that it comes back (a loaded CI
    # machine has taken 5.1 s to start a Python process with the station's imports).
    assert online and all(v is not None and v <= 20.0 for v in online), online


def test_a_full_disk_drops_metrics_holds_alerts_in_memory_and_says_so(report):
    disk = report.disk
    assert disk["station"] == "bench-1"
    # alerts were held in memory at least once (sent directly): the disk really was full for them
    assert disk["held_total"].get("alert", 0) >= 1, disk
    assert "the disk is full" in disk["full_error"] and "outbox.sqlite3" in disk["full_error"]
    assert "held in memory now" in disk["full_error"], disk["full_error"]
    dropped = disk["dropped"]
    assert "alert" not in dropped and sum(dropped.values()) > 0, dropped
    assert report.per_station["bench-1"]["lost"] == 0


def test_a_sigkill_on_a_full_disk_loses_nothing_and_the_journal_comes_first(report):
    k = report.killed_disk
    assert k["kills_inside"] >= 1 and k["held_alerts"] >= 1, k
    assert k["full_errors"] >= 1, k
    assert report.per_station[chaos.KILLED_ID]["lost"] == 0 and not report.lost_by_cause
    # every event the killed station delivered had been journaled before it was stored
    assert report.per_station[chaos.KILLED_ID].get("unrecorded", 0) == 0, report.per_station


def test_damaged_outboxes_are_moved_aside_and_lose_nothing(report):
    assert len(report.damage) == 2, report.damage
    for d in report.damage:
        assert d["seen"] or d["kind"] == "garbage WAL", report.damage


def test_floods_of_session_commands_never_end_a_loop(report):
    f = report.floods
    assert f["floods"] == 2 and f["commands"] >= 600 and f["presses"] >= 20, f
    # Each command sent gets exactly one reply, "ok" or "busy", however loaded the machine: none
    # is lost (how many run rather than find the queue full depends on the load, not the station).
    assert set(f["sent"]) == {"bench-1", "bench-2", chaos.KILLED_ID}, f
    assert f["answered"] == f["sent"], f
    assert f["replies"].get("ok", 0) >= 1 and f["replies"].get("busy", 0) >= 1, f["replies"]
    assert not f["other_replies"], f["other_replies"]
    assert not any(report.loop_errors.values()), report.loop_errors


def test_the_wall_and_the_retained_lists_show_what_the_stations_hold(report):
    assert report.display_restarts == 1 and report.wall is not None
    assert not report.stale_active, report.stale_active
    assert not report.wall_mismatch, report.wall_mismatch
    assert report.ghosts == 0 and report.missing_on_wall == 0
    assert set(report.holds) == {"bench-1", "bench-2", chaos.KILLED_ID}


def test_no_station_loop_crashed_and_nothing_is_left_waiting(report):
    assert not any(report.crashes.values()), report.crashes
    assert not report.errors, report.errors


def test_a_calibration_survives_a_power_cut_anywhere_in_a_save(tmp_path):
    cuts = chaos.calibration_power_cuts(tmp_path, random.Random(3), 8)
    # Before the rename the old file is there, after it the new one; a random cut, either.
    expected = {
        "mid-write": {"old"},
        "before-rename": {"old"},
        "after-rename": {"new"},
        "random": {"old", "new"},
    }
    assert len(cuts) == 8 and {c.point for c in cuts} == set(expected)
    for c in cuts:
        assert c.found in expected[c.point], (c.point, c.found, c.detail)


def test_the_power_cut_check_catches_a_writer_that_writes_in_place(tmp_path):
    # Same cut, a writer without the temporary file and rename: the file is torn.
    cuts = chaos.calibration_power_cuts(tmp_path, random.Random(3), 1, naive=True)
    assert [(c.point, c.found) for c in cuts] == [("mid-write", "torn")]
