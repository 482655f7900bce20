"""Unit tests of the wall display's board (monitor.display.state), with a simulated clock."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.clock import SimClock
from monitor.display.state import MAX_SENSORS, MAX_STATION_ID, Board

T0 = 1_732_435_200.0


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def tremor(
    ratio: float | None = 1.5,
    *,
    sensor: str = "wrist",
    level: str | None = None,
    rms: float | None = None,
    **extra: Any,
) -> bytes:
    if level is None:
        level = (
            "none"
            if ratio is None
            else "normal"
            if ratio < 2
            else "elevated"
            if ratio < 4
            else "high"
        )
    payload = {
        "v": 1,
        "ts": T0,
        "station": "bench-1",
        "sensor": sensor,
        "placement": "limb",
        "exercised": True,
        "rms_mg": rms if rms is not None else (None if ratio is None else 8.0 * ratio),
        "peak_hz": None if ratio is None else 8.1,
        "ratio": ratio,
        "level": level,
        "moving": False,
        "measurable": level != "none",
        "window_s": 2.5,
    }
    payload.update(extra)
    return j(payload)


def alert(alert_id: str, level: str = "warning", state: str = "raised", **extra: Any) -> dict:
    out = {
        "v": 1,
        "ts": T0,
        "station": "bench-1",
        "id": alert_id,
        "code": "tremor.high",
        "level": level,
        "state": state,
        "red_flag": False,
        "sensor": "wrist",
        "message": f"message {alert_id}",
        "advice": "Rest longer.",
        "evidence": {"ratio": 4.2},
        "raised_ts": T0,
    }
    out.update(extra)
    return out


@pytest.fixture
def clock() -> SimClock:
    return SimClock(100.0, epoch=T0 - 100.0)


@pytest.fixture
def board(clock: SimClock) -> Board:
    return Board("gym", stale_after=30.0, clock=clock, history_s=60.0, bucket_s=2.0)


# --------------------------------------------------------------------------- payloads


def test_status_online_offline_and_cleared(board):
    assert board.handle("gym/bench-1/status", b"online") == "bench-1"
    assert board.view("bench-1")["status"] == "online"
    assert board.handle("gym/bench-1/status", b"online") is None  # no change
    assert board.handle("gym/bench-1/status", b"offline") == "bench-1"
    assert board.view("bench-1")["status"] == "offline"
    assert board.handle("gym/bench-1/status", b"") == "bench-1"  # retained message deleted
    assert board.view("bench-1")["status"] == "unknown"


def test_tremor_reading_is_summarised_per_station(board):
    board.handle("gym/bench-1/tremor", tremor(1.4, sensor="wrist"))
    board.handle("gym/bench-1/tremor", tremor(4.6, sensor="ankle"))
    view = board.view("bench-1")
    assert view["tremor"]["sensor"] == "ankle"  # the worst sensor is the one shown
    assert view["tremor"]["ratio"] == pytest.approx(4.6)
    assert view["tremor"]["level"] == "high"
    assert view["tremor"]["peak_hz"] == pytest.approx(8.1)
    assert [s["sensor"] for s in view["sensors"]] == ["ankle", "wrist"]
    board.handle("gym/bench-1/tremor", tremor(1.1, sensor="ankle"))
    assert board.view("bench-1")["tremor"]["sensor"] == "wrist"


def test_a_silent_sensor_stops_dominating_the_tile(board, clock):
    board.handle("gym/bench-1/tremor", tremor(5.0, sensor="ankle"))
    clock.advance(31)
    board.handle("gym/bench-1/tremor", tremor(1.2, sensor="wrist"))
    assert board.view("bench-1")["tremor"]["sensor"] == "wrist"


def test_no_measurable_tremor_has_nulls(board):
    board.handle("gym/bench-1/tremor", tremor(None))
    summary = board.view("bench-1")["tremor"]
    assert summary["level"] == "none" and summary["measurable"] is False
    assert summary["rms_mg"] is None and summary["peak_hz"] is None


def test_session_name_becomes_the_display_name_and_clears(board):
    board.handle("gym/bench-1/status", b"online")
    assert board.view("bench-1")["name"] == "bench-1"
    board.handle(
        "gym/bench-1/session",
        j(
            {
                "v": 1,
                "ts": T0,
                "station": "bench-1",
                "name": "Bench 1",
                "state": "reps",
                "set_count": 3,
                "last_set_end_ts": T0 - 60,
            }
        ),
    )
    view = board.view("bench-1")
    assert view["name"] == "Bench 1"
    assert view["session"]["state"] == "reps" and view["session"]["set_count"] == 3
    board.handle("gym/bench-1/session", b"")
    assert board.view("bench-1")["session"] is None
    assert board.view("bench-1")["name"] == "bench-1"


def test_hydration_figures(board):
    board.handle(
        "gym/bench-1/hydration",
        j({"v": 1, "ts": T0, "mode": "body", "body_mass_loss_pct": 2.3, "intake_ml": None}),
    )
    hyd = board.view("bench-1")["hydration"]
    assert hyd["mode"] == "body" and hyd["body_mass_loss_pct"] == pytest.approx(2.3)
    assert hyd["intake_ml"] is None


def test_newer_schema_versions_are_read_for_the_fields_we_know(board):
    assert board.handle("gym/bench-1/tremor", tremor(2.5, v=2, new_field={"x": 1})) == "bench-1"
    assert board.view("bench-1")["tremor"]["ratio"] == pytest.approx(2.5)


def test_topics_that_are_not_station_data_are_ignored(board):
    assert board.handle("gym/bench-1/cmd/ack", j({"v": 1, "id": "a", "by": "display"})) is None
    assert board.handle("gym/bench-1/cmd/ack/result", j({"v": 1, "ok": True})) is None
    assert board.handle("other/bench-1/tremor", tremor()) is None
    assert board.handle("gym/bench-1/something-new", j({"v": 1})) is None
    assert board.handle("gym/bench-1", b"online") is None
    assert board.station_ids() == []
    assert board.ignored == 0  # not errors: just not ours


def test_prefix_may_have_levels():
    board = Board("site/gym/", clock=SimClock())
    assert board.handle("site/gym/bench-1/status", b"online") == "bench-1"
    assert board.handle("gym/bench-2/status", b"online") is None


# --------------------------------------------------------------------------- malformed input


BAD = [
    ("tremor", b"not json"),
    ("tremor", b"\xff\xfe\x00"),
    ("tremor", b"[1, 2]"),
    ("tremor", b'"a string"'),
    ("tremor", b'{"v": 1, "level": "high", "ratio": NaN}'),
    ("tremor", b'{"v": 1, "level": "high", "ratio": Infinity}'),
    ("tremor", j({"v": 1, "level": "high", "rms_mg": "12"})),
    ("tremor", j({"v": 1, "level": "high", "rms_mg": True})),
    ("tremor", b'{"v": 1, "level": "high", "rms_mg": 1' + b"0" * 400 + b"}"),
    ("tremor", b'{"v": 1, "level": "high", "rms_mg": 1e400}'),
    ("tremor", j({"v": 1, "level": "purple"})),
    ("tremor", j({"level": "high"})),
    ("tremor", j({"v": "1", "level": "high"})),
    ("tremor", j({"v": 1, "level": "high", "sensor": ["wrist"]})),
    ("tremor", b"[" * 50_000 + b"]" * 50_000),
    ("tremor", j({"v": 1, "level": "high", "pad": "x" * 70_000})),
    ("session", j({"v": 1, "set_count": -1})),
    ("session", j({"v": 1, "set_count": 2.5})),
    ("session", j({"v": 1, "name": 42})),
    ("hydration", j({"v": 1, "mode": "bucket"})),
    ("alert", j({"v": 1, "id": 7, "level": "urgent"})),
    ("alert", j({"v": 1, "level": "urgent"})),
    ("alert", j({"v": 1, "id": "a", "level": "apocalyptic"})),
    ("alert", j({"v": 1, "id": "a", "level": "info", "state": "forgotten"})),
    ("alerts/active", j({"v": 1, "alerts": {"a": 1}})),
    ("status", b"maybe"),
]


@pytest.mark.parametrize("kind,payload", BAD, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD)])
def test_malformed_payloads_are_ignored(board, kind, payload):
    assert board.handle(f"gym/bench-1/{kind}", payload) is None
    assert board.ignored == 1
    assert board.station_ids() == []  # a station is not created by garbage


def test_malformed_payload_leaves_existing_state_alone(board):
    board.handle("gym/bench-1/tremor", tremor(2.5))
    board.handle("gym/bench-1/session", j({"v": 1, "name": "Bench 1", "set_count": 2}))
    before = board.view("bench-1")
    seq = board.seq
    for kind, payload in BAD:
        board.handle(f"gym/bench-1/{kind}", payload)
    assert board.seq == seq
    assert board.view("bench-1") == before
    assert board.ignored == len(BAD)


def test_one_bad_entry_in_the_active_list_does_not_hide_the_others(board):
    board.handle(
        "gym/bench-1/alerts/active",
        j({"v": 1, "alerts": [alert("a1"), {"id": 3}, "junk", alert("a2", "urgent")]}),
    )
    assert [a["id"] for a in board.view("bench-1")["alerts"]] == ["a2", "a1"]
    assert board.ignored == 2


def test_long_station_ids_and_texts_are_bounded(board):
    long_id = "x" * (MAX_STATION_ID + 1)
    assert board.handle(f"gym/{long_id}/status", b"online") is None
    board.handle("gym/bench-1/alert", j(alert("a1", message="m" * 10_000)))
    message = board.view("bench-1")["alerts"][0]["message"]
    assert len(message) == 300 and message.endswith("\u2026")


def test_malformed_messages_are_logged_but_not_flooded(board, clock, caplog):
    caplog.set_level(logging.WARNING, logger="monitor.display.state")
    for _ in range(500):
        board.handle("gym/bench-1/tremor", b"junk")
    assert board.ignored == 500
    assert 1 <= len(caplog.records) <= 21
    caplog.clear()
    clock.advance(61)
    board.handle("gym/bench-1/tremor", b"junk")
    assert len(caplog.records) == 1  # a new minute, a new budget


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(
        ["status", "tremor", "session", "hydration", "alert", "alerts/active", "cmd/ack"]
    ),
    payload=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "v",
                            "level",
                            "ratio",
                            "rms_mg",
                            "id",
                            "state",
                            "alerts",
                            "name",
                            "set_count",
                            "mode",
                            "sensor",
                            "message",
                        ]
                    ),
                    inner,
                    max_size=6,
                )
            ),
            max_leaves=20,
        ).map(lambda o: json.dumps(o).encode()),
    ),
)
def test_any_payload_is_handled_without_raising(kind, payload):
    board = Board(clock=SimClock())
    board.handle(f"gym/s1/{kind}", payload)
    board.refresh()
    # Whatever got in must still serialise as strict JSON for the browser.
    json.dumps(board.snapshot(), allow_nan=False)
    json.dumps(board.changes_since(0), allow_nan=False)


# --------------------------------------------------------------------------- staleness


def test_a_station_goes_stale_after_silence_and_recovers(board, clock):
    board.handle("gym/bench-1/status", b"online")
    board.handle("gym/bench-1/tremor", tremor())
    clock.advance(30.0)
    assert board.refresh() == []  # exactly stale_after is not yet stale
    assert board.view("bench-1")["stale"] is False
    clock.advance(0.5)
    assert board.refresh() == ["bench-1"]
    assert board.view("bench-1")["stale"] is True
    assert board.refresh() == []  # reported once, not on every tick
    seq = board.seq
    assert board.handle("gym/bench-1/tremor", tremor()) == "bench-1"
    assert board.view("bench-1")["stale"] is False
    assert board.seq > seq


def test_offline_stations_are_offline_not_stale(board, clock):
    board.handle("gym/bench-1/status", b"offline")
    clock.advance(3600)
    assert board.refresh() == []
    view = board.view("bench-1")
    assert view["status"] == "offline" and view["stale"] is False


def test_last_seen_is_wall_time(board, clock):
    board.handle("gym/bench-1/status", b"online")
    assert board.view("bench-1")["last_seen"] == pytest.approx(T0)
    clock.advance(12)
    board.handle("gym/bench-1/tremor", tremor())
    assert board.view("bench-1")["last_seen"] == pytest.approx(T0 + 12)


# --------------------------------------------------------------------------- bounded memory


def test_history_is_bucketed_and_bounded(board, clock):
    board.handle("gym/bench-1/tremor", tremor(1.5))
    board.handle("gym/bench-1/tremor", tremor(3.0))  # same 2 s bucket: the max stays
    board.handle("gym/bench-1/tremor", tremor(2.0))
    assert board.view("bench-1")["spark"] == [[T0, 3.0, 24.0]]
    for _ in range(500):
        clock.advance(1.0)
        board.handle("gym/bench-1/tremor", tremor(1.2))
    spark = board.view("bench-1")["spark"]
    assert len(spark) == 30  # 60 s of history in 2 s buckets
    assert spark[-1][0] - spark[0][0] == pytest.approx(58.0)
    assert board.view("bench-1", full=False)["spark_tail"] == spark[-3:]


def test_not_measurable_readings_leave_gaps_in_the_history(board):
    board.handle("gym/bench-1/tremor", tremor(None))
    assert board.view("bench-1")["spark"] == [[T0, None, None]]


def test_station_count_is_capped():
    board = Board(clock=SimClock(), max_stations=3)
    for i in range(5):
        board.handle(f"gym/s{i}/status", b"online")
    assert board.station_ids() == ["s0", "s1", "s2"]
    assert board.refused == 2 and board.snapshot()["refused"] == 2


def test_sensor_count_is_capped(board):
    for i in range(MAX_SENSORS + 3):
        board.handle("gym/bench-1/tremor", tremor(1.2, sensor=f"s{i}"))
    assert len(board.view("bench-1")["sensors"]) == MAX_SENSORS


def test_recent_events_are_capped(clock):
    board = Board(clock=clock, max_events=5)
    for i in range(20):
        board.handle("gym/bench-1/alert", j(alert(f"a{i}")))
    events = board.view("bench-1")["events"]
    assert [e["id"] for e in events] == [f"a{i}" for i in range(15, 20)]


def test_active_alerts_are_capped_keeping_the_most_serious(board):
    board.handle("gym/bench-1/alert", j(alert("urgent-1", "urgent")))
    for i in range(100):
        board.handle("gym/bench-1/alert", j(alert(f"info-{i}", "info")))
    ids = [a["id"] for a in board.view("bench-1")["alerts"]]
    assert len(ids) == 32 and ids[0] == "urgent-1"


# --------------------------------------------------------------------------- alerts


def test_alert_raised_then_cleared(board):
    assert board.handle("gym/bench-1/alert", j(alert("a1", "caution"))) == "bench-1"
    active = board.view("bench-1")["alerts"]
    assert [(a["id"], a["level"], a["ack_sent"]) for a in active] == [("a1", "caution", False)]
    assert (
        board.handle("gym/bench-1/alert", j(alert("a1", "caution", state="cleared"))) == "bench-1"
    )
    view = board.view("bench-1")
    assert view["alerts"] == []
    assert [(e["id"], e["state"]) for e in view["events"]] == [("a1", "raised"), ("a1", "cleared")]


def test_duplicate_events_are_dropped_by_id_and_state(board):
    board.handle("gym/bench-1/alert", j(alert("a1")))
    assert board.handle("gym/bench-1/alert", j(alert("a1"))) is None
    assert len(board.view("bench-1")["events"]) == 1


def test_acknowledged_alerts_leave_the_active_list(board):
    board.handle("gym/bench-1/alert", j(alert("a1", "urgent", red_flag=True)))
    assert board.view("bench-1")["alerts"][0]["red_flag"] is True
    board.handle("gym/bench-1/alert", j(alert("a1", "urgent", state="acknowledged")))
    assert board.view("bench-1")["alerts"] == []


def test_active_list_replaces_the_set_and_sorts_by_level(board):
    board.handle("gym/bench-1/alert", j(alert("old")))
    board.handle(
        "gym/bench-1/alerts/active",
        j(
            {
                "v": 1,
                "ts": T0,
                "station": "bench-1",
                "alerts": [alert("i", "info"), alert("u", "urgent"), alert("c", "caution")],
            }
        ),
    )
    assert [a["id"] for a in board.view("bench-1")["alerts"]] == ["u", "c", "i"]
    board.handle("gym/bench-1/alerts/active", b"")
    assert board.view("bench-1")["alerts"] == []


def test_ack_from_a_display_is_remembered_until_the_alert_goes(board):
    board.handle("gym/bench-1/alert", j(alert("a1", "urgent")))
    assert board.is_active("bench-1", "a1")
    assert not board.note_ack("bench-1", "nope")
    assert not board.note_ack("nowhere", "a1")
    seq = board.seq
    assert board.note_ack("bench-1", "a1")
    assert board.seq > seq
    assert board.view("bench-1")["alerts"][0]["ack_sent"] is True
    board.handle("gym/bench-1/alert", j(alert("a1", "urgent", state="acknowledged")))
    assert not board.is_active("bench-1", "a1")
    board.handle("gym/bench-1/alert", j(alert("a1", "urgent", state="raised", ts=T0 + 1)))
    # Same (id, raised) pair as before: a duplicate, dropped.
    assert board.view("bench-1")["alerts"] == []


# --------------------------------------------------------------------------- change tracking


def test_changes_since_returns_only_moved_stations(board):
    board.handle("gym/a/status", b"online")
    board.handle("gym/b/status", b"online")
    seq = board.seq
    board.handle("gym/b/tremor", tremor(2.2))
    update = board.changes_since(seq)
    assert [s["id"] for s in update["stations"]] == ["b"]
    partial = update["stations"][0]
    assert "spark" not in partial and "events" not in partial and "spark_tail" in partial
    assert board.changes_since(update["seq"])["stations"] == []


def test_link_state_is_part_of_every_update(board):
    assert board.snapshot()["link_up"] is False
    seq = board.seq
    assert board.set_link(True) is True
    assert board.set_link(True) is False
    assert board.seq == seq + 1
    assert board.changes_since(seq)["link_up"] is True


def test_snapshot_carries_what_the_page_needs(board):
    board.handle("gym/b/status", b"online")
    board.handle("gym/a/status", b"online")
    snap = board.snapshot()
    assert [s["id"] for s in snap["stations"]] == ["a", "b"]
    assert snap["stale_after"] == 30.0 and snap["history_s"] == 60.0
    assert snap["now"] == pytest.approx(T0)
    assert "spark" in snap["stations"][0]


def test_bad_board_settings_are_refused():
    with pytest.raises(ValueError):
        Board(stale_after=0)
    with pytest.raises(ValueError):
        Board(history_s=1, bucket_s=2)


def test_the_display_knows_nothing_of_i2c_simulation_or_analysis():
    # The display only reads MQTT: importing it must not pull in the station's layers.
    code = (
        "import sys, monitor.display.service, monitor.display.state; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['monitor', 'i2c'], ['monitor', 'sim'], ['monitor', 'analysis'])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- acks on their way


def test_an_ack_waits_for_the_station_then_fails_visibly(board, clock):
    board.handle("gym/bench-1/status", b"online")
    board.handle("gym/bench-1/alert", j(alert("a1", "urgent")))
    assert board.note_ack("bench-1", "a1", "Alice", "r1")
    ack = board.view("bench-1")["alerts"][0]["ack"]
    assert ack["state"] == "waiting" and ack["by"] == "Alice" and ack["ts"] == pytest.approx(T0)
    clock.advance(7.9)
    assert board.refresh() == []
    clock.advance(0.2)
    assert board.refresh() == ["bench-1"]
    ack = board.view("bench-1")["alerts"][0]["ack"]
    assert ack["state"] == "failed" and "did not confirm within 8 s" in ack["error"]
    assert board.is_active("bench-1", "a1")  # the alert itself is still there
    assert board.note_ack("bench-1", "a1", "Bob", "r2")  # a retry
    assert board.view("bench-1")["alerts"][0]["ack"]["state"] == "waiting"


def test_a_refusal_from_the_station_fails_the_ack(board):
    board.handle("gym/bench-1/alert", j(alert("a1")))
    board.note_ack("bench-1", "a1", "Alice", "r1")
    assert (
        board.handle("gym/bench-1/cmd/ack/result", j({"v": 1, "ok": True, "request_id": "r1"}))
        is None
    )
    assert (
        board.handle(
            "gym/bench-1/cmd/ack/result",
            j({"v": 1, "ok": False, "error": "no active alert", "request_id": "zz"}),
        )
        is None
    )  # someone else's request
    assert (
        board.handle(
            "gym/bench-1/cmd/ack/result",
            j({"v": 1, "ok": False, "error": "no active alert", "request_id": "r1"}),
        )
        == "bench-1"
    )
    ack = board.view("bench-1")["alerts"][0]["ack"]
    assert ack["state"] == "failed" and "no active alert" in ack["error"]


def test_the_stations_confirmation_records_who_and_when(board, clock):
    board.handle("gym/bench-1/session", j({"v": 1, "name": "Bench 1"}))
    board.handle("gym/bench-1/alert", j(alert("a1", "urgent", message="Possible fall")))
    board.note_ack("bench-1", "a1", "Alice", "r1")
    seq = board.seq
    board.handle(
        "gym/bench-1/alert",
        j(alert("a1", "urgent", state="acknowledged", by="Alice", ts=T0 + 3, message="")),
    )
    assert board.view("bench-1")["alerts"] == []
    update = board.changes_since(seq)
    assert update["acks"] == board.recent_acks()
    (entry,) = board.recent_acks()
    assert entry == {
        "station": "bench-1",
        "name": "Bench 1",
        "id": "a1",
        "code": "tremor.high",
        "level": "urgent",
        "kind": "physiology",
        "message": "Possible fall",
        "by": "Alice",
        "ts": T0 + 3,
    }
    assert "acks" not in board.changes_since(board.seq)


# --------------------------------------------------------------------------- ghosts


def test_alerts_of_an_offline_station_stay_but_are_unconfirmed(board, clock):
    board.handle("gym/bench-1/status", b"online")
    board.handle("gym/bench-1/alert", j(alert("fall", "urgent", red_flag=True)))
    assert board.view("bench-1")["alerts"][0]["confirmed"] is True
    board.handle("gym/bench-1/status", b"offline")
    view = board.view("bench-1")
    assert [a["id"] for a in view["alerts"]] == ["fall"]  # never silently dropped
    assert view["alerts"][0]["confirmed"] is False
    # Back online: still unconfirmed until the station says what it holds.
    board.handle("gym/bench-1/status", b"online")
    assert board.view("bench-1")["alerts"][0]["confirmed"] is False
    board.handle("gym/bench-1/alerts/active", j({"v": 1, "alerts": []}))
    assert board.view("bench-1")["alerts"] == []  # the ghost is gone


def test_a_republished_list_keeps_what_still_holds_and_confirms_it(board):
    board.handle("gym/bench-1/status", b"online")
    board.handle("gym/bench-1/alert", j(alert("old", "urgent")))
    board.handle("gym/bench-1/alert", j(alert("still", "warning")))
    board.handle("gym/bench-1/status", b"offline")
    board.handle("gym/bench-1/status", b"online")
    board.handle("gym/bench-1/alerts/active", j({"v": 1, "alerts": [alert("still", "warning")]}))
    alerts = board.view("bench-1")["alerts"]
    assert [(a["id"], a["confirmed"]) for a in alerts] == [("still", True)]


def test_a_silent_station_is_unconfirmed_too(board, clock):
    board.handle("gym/bench-1/status", b"online")
    board.handle("gym/bench-1/alert", j(alert("a1")))
    clock.advance(31)
    board.refresh()
    assert board.view("bench-1")["alerts"][0]["confirmed"] is False


def test_sensor_faults_are_equipment_not_physiology(board):
    board.handle("gym/bench-1/alert", j(alert("f1", "warning", code="sensor.fault")))
    board.handle("gym/bench-1/alert", j(alert("o1", "caution", code="sensor.overrun")))
    board.handle("gym/bench-1/alert", j(alert("t1", "caution", code="tremor.elevated")))
    kinds = {a["id"]: a["kind"] for a in board.view("bench-1")["alerts"]}
    assert kinds == {"f1": "equipment", "o1": "equipment", "t1": "physiology"}


# --------------------------------------------------------------------------- who keeps a place


def test_offline_and_silent_stations_are_evicted_after_a_while(clock):
    board = Board(clock=clock, evict_after=600, known=["listed-1"])
    for sid in ("gone-1", "quiet-2", "listed-1", "fall-3"):
        board.handle(f"gym/{sid}/status", b"online")
    board.handle("gym/fall-3/alert", j(alert("f", "urgent", red_flag=True)))
    board.handle("gym/gone-1/status", b"offline")
    board.handle("gym/listed-1/status", b"offline")
    board.handle("gym/fall-3/status", b"offline")
    seq = board.seq
    clock.advance(599)
    board.refresh()
    assert board.station_ids() == ["fall-3", "gone-1", "listed-1", "quiet-2"]
    clock.advance(2)
    board.refresh()
    # The listed one and the one holding an urgent alert stay, and so does the one
    # that only went quiet (its will says when it is gone); the offline one goes.
    assert board.station_ids() == ["fall-3", "listed-1", "quiet-2"]
    assert board.changes_since(seq)["removed"] == ["gone-1"]
    # A station that comes back is simply new again.
    board.handle("gym/gone-1/status", b"online")
    assert "gone-1" in board.station_ids()
    assert board.changes_since(seq)["removed"] == []


def test_a_flood_of_unknown_ids_cannot_push_out_real_stations(clock):
    board = Board(clock=clock, max_stations=6, known=["listed-1"])
    board.handle("gym/real-1/status", b"online")  # a station's own status: vouched
    board.handle(
        "gym/real-1/alerts/active", j({"v": 1, "alerts": [alert("fall", "urgent")]}), retained=True
    )
    board.handle("gym/real-2/session", j({"v": 1, "name": "Rack"}), retained=True)
    for i in range(500):
        board.handle(f"gym/fake-{i}/tremor", tremor(5.0))
    for i in range(50):  # fakes with made-up urgent alerts, not vouched for
        board.handle(f"gym/evil-{i}/alert", j(alert(f"x{i}", "urgent")))
    ids = board.station_ids()
    assert len(ids) == 6 and {"real-1", "real-2"} <= set(ids)
    assert board.view("real-1")["alerts"][0]["id"] == "fall"
    assert board.refused > 500
    # A listed station always gets in, even on a full board...
    board.handle("gym/listed-1/tremor", tremor(1.2))
    assert "listed-1" in board.station_ids() and len(board.station_ids()) == 6
    # ...and vouched newcomers take the places of unknown ones, never of vouched ones.
    for i in range(3, 10):
        board.handle(f"gym/real-{i}/status", b"online")
    ids = set(board.station_ids())
    assert {"real-1", "real-2", "listed-1"} <= ids and len(ids) == 6
    assert all(i.startswith(("real-", "listed-")) for i in ids)
    assert board.view("real-1")["alerts"][0]["id"] == "fall"


def test_board_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError):
        Board(max_stations=2, known=["a", "b"])
    with pytest.raises(ValueError):
        Board(ack_timeout=0)


# --------------------------------------------------------------------------- grades


def test_the_grades_in_force_reach_the_page(board):
    """The guides of a sparkline sit at the station's thresholds, never at the page's own."""
    from monitor.grades import ELEVATED_RATIO, HIGH_RATIO

    snap = board.snapshot()
    assert snap["grades"] == {"elevated_ratio": ELEVATED_RATIO, "high_ratio": HIGH_RATIO}
    board.handle("gym/bench-1/session", j({"v": 1, "name": "Bench 1"}))
    assert board.view("bench-1")["session"]["thresholds"] == snap["grades"]
    coached = {"elevated_ratio": 1.5, "high_ratio": 2.5}
    board.handle("gym/bench-1/session", j({"v": 1, "name": "Bench 1", "thresholds": coached}))
    assert board.view("bench-1")["session"]["thresholds"] == coached
    # Thresholds that cannot grade anything are refused with the rest of the message.
    bad = {"elevated_ratio": 3.0, "high_ratio": 2.0}
    assert board.handle("gym/bench-1/session", j({"v": 1, "thresholds": bad})) is None
    assert board.ignored == 1
    assert board.view("bench-1")["session"]["thresholds"] == coached


def test_the_level_shown_is_the_stations_not_recomputed(board):
    # A coach's thresholds graded 2.5x as high on the station: the wall says what it said.
    board.handle("gym/bench-1/tremor", tremor(2.5, level="high"))
    assert board.view("bench-1")["tremor"]["level"] == "high"
