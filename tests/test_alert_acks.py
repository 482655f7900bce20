"""Acknowledging alerts: who and when, how long an urgent one stays quiet, and restarts.

Issue: one ack of an urgent red flag silenced it for as long as its condition held
(no re-raise in an hour of a fall that stayed), and every ack said ``by: "display"``.
"""

from __future__ import annotations

import json

import pytest

from monitor.alerts import Alert, AlertConfig, AlertManager, Condition

CFG = AlertConfig(min_s=0.0, cooldown_s=120.0, ack_silence_s=300.0)


def cond(key="redflag.persistent", level="urgent", latched=False) -> Condition:
    return Condition(
        key,
        key.split(":")[0],
        level,
        "msg",
        "advice",
        {"x": 1},
        red_flag=level == "urgent",
        min_s=0.0,
        latched=latched,
    )


def run(manager: AlertManager, conditions, t0: float, t1: float, dt: float = 1.0) -> list[Alert]:
    events = []
    t = t0
    while t < t1:
        events += manager.update(conditions, t, 1_700_000_000.0 + t)
        t += dt
    return events


def test_an_urgent_ack_records_who_and_when_and_silences_for_ack_silence_s():
    m = AlertManager("bench-1", CFG)
    [raised] = m.update([cond()], 0.0, 1000.0)
    ack = m.acknowledge(raised.id, 10.0, 1010.0, by="Anna")
    assert (ack.state, ack.by, ack.acked_ts, ack.silenced_until_ts) == (
        "acknowledged",
        "Anna",
        1010.0,
        1310.0,
    )
    assert ack.payload()["by"] == "Anna" and ack.payload()["silenced_until_ts"] == 1310.0
    assert m.active() == [] and [a.id for a in m.silenced()] == [raised.id]
    # quiet while silenced, although the condition holds ...
    assert run(m, [cond()], 11.0, 309.0) == []
    # ... and raised again, with a new id, once the silence is over
    events = run(m, [cond()], 309.0, 312.0)
    assert [(e.state, e.follows) for e in events] == [("raised", raised.id)]
    assert events[0].id != raised.id and m.silenced() == []
    # an hour of a red flag that stays: it sounds again every ack_silence_s after each ack
    raises = 1
    t = 312.0
    while t < 3600.0:
        current = m.active()[0]
        m.acknowledge(current.id, t, 1_700_000_000.0 + t, by="Ben")
        raises += len([e for e in run(m, [cond()], t + 1, t + 301) if e.state == "raised"])
        t += 301
    assert raises >= 11


def test_an_urgent_alert_whose_condition_passes_while_silenced_does_not_come_back():
    m = AlertManager("bench-1", CFG)
    [raised] = m.update([cond()], 0.0, 1000.0)
    m.acknowledge(raised.id, 10.0, 1010.0, by="Anna")
    assert run(m, [cond()], 11.0, 50.0) == []
    assert run(m, [], 50.0, 400.0) == []  # passed: no cleared event for an acknowledged alert
    assert m.silenced() == [] and m.active() == []
    # back after the cooldown: a new alert, not a follow-up
    events = run(m, [cond()], 400.0, 402.0)
    assert [(e.state, e.follows) for e in events] == [("raised", None)]


def test_a_non_urgent_ack_holds_while_the_condition_holds_unless_it_gets_worse():
    m = AlertManager("bench-1", CFG)
    [raised] = m.update([cond("tremor.high:wrist", "caution")], 0.0, 1000.0)
    ack = m.acknowledge(raised.id, 1.0, 1001.0, by="Coach")
    assert ack.silenced_until_ts is None
    assert run(m, [cond("tremor.high:wrist", "caution")], 2.0, 2000.0, dt=10.0) == []
    worse = run(m, [cond("tremor.high:wrist", "warning")], 2000.0, 2002.0)
    assert [(e.state, e.level, e.follows) for e in worse] == [("raised", "warning", raised.id)]


def test_a_latched_fall_stays_until_acknowledged_and_is_gone_after_it():
    m = AlertManager("bench-1", CFG)
    fall = cond("redflag.fall:chest:12.0", latched=True)
    [raised] = m.update([fall], 0.0, 1000.0)
    assert run(m, [], 1.0, 3600.0, dt=60.0) == []  # the condition passed; the alert stays
    assert [a.id for a in m.active()] == [raised.id]
    ack = m.acknowledge(raised.id, 3600.0, 4600.0, by="Anna")
    assert ack is not None and m.active() == [] and m.silenced() == []
    assert run(m, [], 3601.0, 4000.0, dt=60.0) == []


def test_acknowledging_twice_is_harmless_and_unknown_ids_are_refused():
    m = AlertManager("bench-1", CFG)
    [raised] = m.update([cond()], 0.0, 1000.0)
    first = m.acknowledge(raised.id, 1.0, 1001.0, by="Anna")
    assert m.acknowledge(raised.id, 2.0, 1002.0, by="Ben") is None
    assert m.acknowledged_event(raised.id) == first
    assert m.acknowledge("bench-1:nope:0001", 2.0, 1002.0) is None


def test_the_active_payload_lists_acknowledged_alerts_apart():
    m = AlertManager("bench-1", CFG)
    (a,) = m.update([cond()], 0.0, 1000.0)
    (b,) = m.update([cond(), cond("sensor.fault:wrist", "warning")], 1.0, 1001.0)
    m.acknowledge(a.id, 2.0, 1002.0, by="Anna")
    payload = m.active_alerts(1003.0).to_dict()
    assert [x["id"] for x in payload["alerts"]] == [b.id]
    assert [(x["id"], x["by"], x["state"]) for x in payload["acknowledged"]] == [
        (a.id, "Anna", "acknowledged")
    ]


# ------------------------------------------------------------------ across a restart


def restarted(
    snapshot: dict, grace_s: float = 20.0, t: float = 0.0, wall: float = 5000.0
) -> AlertManager:
    m = AlertManager("bench-1", CFG)
    m.restore(json.loads(json.dumps(snapshot)), t, wall, grace_s)  # as read back from the file
    return m


def test_a_restart_keeps_what_still_holds_with_its_id_clears_the_rest_and_keeps_a_fall():
    before = AlertManager("bench-1", CFG)
    fault = cond("sensor.fault:wrist", "warning")
    fall = cond("redflag.fall:chest:3.0", latched=True)
    hold = cond("hold.fatigue:wrist", "caution")
    events = before.update([fault, fall, hold], 0.0, 4000.0)
    ids = {e.code: e.id for e in events}
    after = restarted(before.snapshot(10.0, 4010.0))
    assert sorted(a.id for a in after.active()) == sorted(ids.values())
    # the fault is seen again within the grace: same id, no event; the hold is not: it clears
    assert after.update([fault], 1.0, 5001.0) == []
    assert after.update([fault], 19.0, 5019.0) == []
    cleared = after.update([fault], 21.0, 5021.0)
    assert [(e.state, e.id) for e in cleared] == [("cleared", ids["hold.fatigue"])]
    assert sorted(a.id for a in after.active()) == sorted(
        [ids["sensor.fault"], ids["redflag.fall"]]
    )
    # the fall, latched, stays until acknowledged
    assert after.update([fault], 600.0, 5600.0) == []
    assert after.acknowledge(ids["redflag.fall"], 601.0, 5601.0, by="Anna").by == "Anna"
    assert [a.id for a in after.active()] == [ids["sensor.fault"]]


def test_a_silence_carries_across_a_restart():
    before = AlertManager("bench-1", CFG)
    [raised] = before.update([cond()], 0.0, 4000.0)
    before.acknowledge(raised.id, 100.0, 4100.0, by="Anna")  # silenced until wall 4400
    after = restarted(before.snapshot(150.0, 4150.0), t=0.0, wall=4200.0)
    assert after.update([cond()], 1.0, 4201.0) == []  # 199 s of silence left
    assert after.update([cond()], 198.0, 4398.0) == []
    again = after.update([cond()], 201.0, 4401.0)
    assert [(e.state, e.follows) for e in again] == [("raised", raised.id)]


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"v": 2, "tracks": []},
        {"v": 1, "tracks": [{"key": 3}]},
        {"v": 1, "tracks": [{"key": "k", "alert": {"id": "x"}}]},
        {
            "v": 1,
            "tracks": [
                {
                    "key": "k",
                    "alert": {
                        **Alert(
                            id="a",
                            station="other",
                            code="c",
                            level="urgent",
                            state="raised",
                            message="m",
                            advice="a",
                            evidence={},
                            sensor=None,
                            red_flag=True,
                            raised_ts=1.0,
                            ts=1.0,
                        ).payload()
                    },
                }
            ],
        },
    ],
)
def test_a_snapshot_that_makes_no_sense_is_refused_with_a_value_error(snapshot):
    with pytest.raises(ValueError):
        AlertManager("bench-1", CFG).restore(snapshot, 0.0, 0.0, 20.0)
