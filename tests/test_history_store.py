"""The history store on both databases it supports: SQLite (a file) and a real PostgreSQL.

Every test runs twice, once per database, through the same code. The
PostgreSQL server is Debian's, started by tests/support/postgres.py on a free
port; without it those runs are skipped, saying why.
"""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from monitor.history import incoming, schema, synthetic
from monitor.history.incoming import BadMessage
from monitor.history.store import DAY, HistoryStore, Item, TraceMinute
from tests.support.postgres import postgres_fixture

postgres = postgres_fixture()
GYM = "leeds"
T0 = 1_760_000_000.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    s = HistoryStore(url, gym=GYM)
    s.migrate()
    yield s
    s.close()


def record(athlete="a1", station="bench-1", started=T0, **kw):
    data = synthetic.session_record(station=station, athlete=athlete, started_ts=started, **kw)
    return data, incoming.session_record(station, json.dumps(data).encode())


def alert(station, alert_id, state, ts, by=None):
    payload = {
        "v": 1,
        "ts": ts,
        "station": station,
        "id": alert_id,
        "code": "tremor.high",
        "level": "warning",
        "state": state,
        "red_flag": False,
        "sensor": "wrist",
        "message": "Tremor is high",
        "advice": "Rest",
        "evidence": {},
        "raised_ts": ts if state == "raised" else ts - 30,
    }
    if by:
        payload["by"] = by
    return incoming.alert_event(station, json.dumps(payload).encode())


def presence(station, athlete, ts, since):
    return incoming.presence(
        station,
        json.dumps(
            {
                "v": 1,
                "ts": ts,
                "station": station,
                "athlete": athlete,
                "guest": athlete is None,
                "since_ts": since,
                "source": "tag",
                "profile": "applied",
            }
        ).encode(),
    )


def test_migrated_database_matches_the_table_definitions(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []
    assert store.migrate() == "0001"  # a second run is a no-op


def test_a_record_delivered_twice_is_stored_once(store):
    data, rec = record(sets=5, holds=1)
    first = store.write([Item(GYM, rec)])
    again = store.write([Item(GYM, rec), Item(GYM, rec)])
    assert (first.stored, first.duplicates) == (1, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    counts = store.counts()
    assert counts["sessions"] == 1 and counts["sets"] == 5 and counts["holds"] == 1
    assert counts["trace"] == len(data["trace"])
    kept = store.session(GYM, data["id"])
    assert kept["session"]["record"] == data  # exactly what arrived, for the export
    assert [s["ratio_median"] for s in kept["sets"]] == [s["ratio_median"] for s in data["sets"]]


def test_alert_events_build_one_alert_with_its_acknowledgement(store):
    store.write([Item(GYM, presence("bench-1", "a7", T0, T0))])
    events = [
        alert("bench-1", "bench-1:1:0001", "raised", T0 + 60),
        alert("bench-1", "bench-1:1:0001", "acknowledged", T0 + 90, by="Ana"),
        alert("bench-1", "bench-1:1:0001", "cleared", T0 + 200),
    ]
    store.write([Item(GYM, e) for e in events])
    store.write([Item(GYM, events[1])])  # redelivered
    log = store.alert_log(GYM)
    assert len(log) == 1
    a = log[0]
    assert (a["raised_ts"], a["acknowledged_ts"], a["acknowledged_by"], a["cleared_ts"]) == (
        T0 + 60,
        T0 + 90,
        "Ana",
        T0 + 200,
    )
    assert a["athlete"] == "a7"  # who was checked in at the station
    assert store.counts()["alert_events"] == 3


def test_profile_update_merges_and_a_late_older_record_does_not_undo_it(store):
    _, first = record(started=T0)
    _, later = record(started=T0 + 7 * DAY)
    newer = store.write([Item(GYM, later)]).profiles
    older = store.write([Item(GYM, first)]).profiles
    assert len(newer) == 1 and older == []
    profile = store.profile(GYM, "a1")
    assert profile.updated_ts == later.ended_ts
    assert profile.baselines_mg == later.record["profile_update"]["baselines_mg"]
    store.set_thresholds(GYM, "a1", {"elevated_ratio": 2.5, "high_ratio": 5.0})
    _, third = record(started=T0 + 14 * DAY)
    merged = store.write([Item(GYM, third)]).profiles[0]
    assert merged.thresholds == {"elevated_ratio": 2.5, "high_ratio": 5.0}  # a coach's stays


def test_live_trace_minutes_never_overwrite_the_records_trace(store):
    data, rec = record(started=T0)
    store.write([Item(GYM, rec)])
    minute = data["trace"][2]["ts"]
    live = TraceMinute("bench-1", "wrist", minute, 120, 9.9, 9.9, 99.0)
    assert store.write([Item(GYM, live)]).duplicates == 1
    row = next(r for r in store.session(GYM, data["id"])["trace"] if r["minute_ts"] == minute)
    assert row["source"] == "record" and row["ratio_p50"] == data["trace"][2]["ratio_p50"]


def test_forget_deletes_every_row_about_the_athlete_and_only_theirs(store):
    for week in range(3):
        store.write(
            [
                Item(GYM, record("a1", started=T0 + week * 7 * DAY)[1]),
                Item(GYM, record("b2", station="rack-3", started=T0 + week * DAY)[1]),
            ]
        )
    store.write(
        [
            Item(GYM, presence("bench-1", "a1", T0 + 30 * DAY, T0 + 30 * DAY)),
            Item(GYM, alert("bench-1", "x:1", "raised", T0 + 30 * DAY + 5)),
        ]
    )
    store.set_card(GYM, "a1", "Sam")
    exported = store.export(GYM, "a1")
    assert (
        len(exported["tables"]["sessions"]) == 3
        and exported["tables"]["cards"][0]["display_name"] == "Sam"
    )
    json.dumps(exported, default=str)  # the JSON export
    counts = store.forget(GYM, "a1")
    assert counts["sessions"] == 3 and counts["profiles"] == 1 and counts["cards"] == 1
    assert not store.knows(GYM, "a1")
    assert all(not rows for rows in store.export(GYM, "a1")["tables"].values())
    assert len(store.export(GYM, "b2")["tables"]["sessions"]) == 3


def test_retention_drops_old_trace_first_and_old_records_later(store):
    now = T0 + 400 * DAY
    for started in (T0, now - 40 * DAY, now - 2 * DAY):
        store.write([Item(GYM, record(started=started)[1])])
    before = store.counts()
    counts = store.prune(trace_days=30, records_months=12, now=now)
    after = store.counts()
    assert counts["sessions"] == 1 and after["sessions"] == 2  # 400 days old: gone
    trace_left = {r["minute_ts"] for r in store.export(GYM, "a1")["tables"]["trace"]}
    assert trace_left and min(trace_left) >= now - 30 * DAY  # only the last session's
    assert after["sets"] < before["sets"] and after["profiles"] == 1


def test_athlete_history_and_list_for_the_pages(store):
    for day in range(0, 70, 3):
        store.write([Item(GYM, record(started=T0 + day * DAY)[1])])
    store.set_card(GYM, "a1", "Sam")
    (row,) = store.athletes()
    assert row["display_name"] == "Sam" and row["sessions"] == 24
    hist = store.athlete_history(GYM, "a1", T0 + 35 * DAY)
    assert all(s["started_ts"] >= T0 + 35 * DAY for s in hist["sessions"])
    assert len(hist["sets"]) == 5 * len(hist["sessions"])


HEAD = b'{"v":1,"ts":1,"station":"bench-1","id":"x",'


@pytest.mark.parametrize(
    "payload, why",
    [
        (b"not json", "not JSON"),
        (b'{"v": 2}', "missing"),
        (HEAD + b'"athlete":"A B","sets":[],"started_ts":1,"ended_ts":2}', "athlete id"),
        (
            (
                b'{"v":1,"ts":1,"station":"other","id":"x","athlete":null,"sets":[],"started_ts":1,'
                b'"ended_ts":2}'
            ),
            "names station 'other'",
        ),
        (HEAD + b'"athlete":null,"sets":[],"started_ts":5,"ended_ts":1}', "ends before"),
        (HEAD + b'"athlete":null,"sets":[{"index":1}],"started_ts":1,"ended_ts":2}', "start_ts"),
        (HEAD + b'"athlete":null,"started_ts":1,"ended_ts":2}', "missing 'sets'"),
        (HEAD + b'"athlete":null,"sets":[],"started_ts":NaN,"ended_ts":2}', "NaN"),
    ],
)
def test_bad_session_records_are_refused_with_the_reason(payload, why):
    with pytest.raises(BadMessage, match=why):
        incoming.session_record("bench-1", payload)


LIVE = b'{"v":1,"ts":1700000000.5,"station":"bench-1","sensor":"wrist","placement":"limb",'


@pytest.mark.parametrize("read", [incoming.tremor_sample, incoming.sensor_summary])
@pytest.mark.parametrize(
    "payload, why",
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"v":1,"ts":1,"sensor":"wrist","ratio":NaN}', "NaN is not valid JSON"),
        (b'{"v":1,"ts":1,"sensor":"wrist","ratio":Infinity}', "Infinity is not valid JSON"),
        (b'{"v":true,"ts":1,"sensor":"wrist"}', "'v' must be 1"),
        (b'{"v":1,"ts":true,"sensor":"wrist"}', "'ts' must be a Unix time"),
        (b'{"v":1,"ts":-5,"sensor":"wrist"}', "'ts' must be a Unix time"),
        (b'{"v":1,"ts":"1","sensor":"wrist"}', "'ts' must be a Unix time"),
        (b'{"v":1,"ts":1,"sensor":""}', "'sensor' must be 1-64"),
        (b'{"v":1,"ts":1,"sensor":"a\\nb"}', "'sensor' must be 1-64"),
        (b'{"v":1,"ts":1,"sensor":"' + b"w" * 65 + b'"}', "'sensor' must be 1-64"),
        (b'{"v":1,"ts":1,"station":"rack-2","sensor":"wrist"}', "names station 'rack-2'"),
        (b'{"v":1,"ts":1,"sensor":"wrist","ratio":-1}', "'ratio' must be a number"),
        (b'{"v":1,"ts":1,"sensor":"wrist","rms_mg":"8"}', "'rms_mg' must be a number"),
        (b'{"v":1,"ts":1,"sensor":"wrist","rms_mg":1e300}', "'rms_mg' must be a number"),
        (b'{"v":1,"ts":1,"sensor":"wrist","pad":"' + b"x" * 5000 + b'"}', "the limit is"),
        (b"[" * 100_000 + b"]" * 100_000, "the limit is"),
        (b"[" * 2000 + b"]" * 2000, "not JSON"),  # too deep for the parser, within the limit
    ],
)
def test_live_readings_are_refused_with_the_reason(read, payload, why):
    with pytest.raises(BadMessage, match=why):
        read("bench-1", payload)


def test_live_readings_keep_their_figures_and_leave_other_keys_unread():
    t = incoming.tremor_sample("bench-1", LIVE + b'"ratio":2.5,"rms_mg":20,"extra":{"x":[1]}}')
    assert (t.sensor, t.ts, t.ratio, t.ratio_max, t.rms_mg, t.windows) == (
        "wrist",
        1700000000.5,
        2.5,
        2.5,
        20.0,
        1,
    )
    h = incoming.sensor_summary(
        "bench-1", LIVE + b'"ratio":1.5,"ratio_max":3,"rms_mg":null,"windows":10}'
    )
    assert (h.ratio, h.ratio_max, h.rms_mg, h.windows) == (1.5, 3.0, None, 10)
    with pytest.raises(BadMessage, match="'windows'"):
        incoming.sensor_summary("bench-1", LIVE + b'"windows":1.5}')


def test_postgres_store_survives_a_server_restart(postgres):
    url = postgres.create_database()
    s = HistoryStore(url, gym=GYM)
    s.migrate()
    s.write([Item(GYM, record(started=T0)[1])])
    postgres.stop()
    with pytest.raises(sa.exc.OperationalError):
        s.write([Item(GYM, record(started=T0 + DAY)[1])])
    postgres.start()
    deadline = time.monotonic() + 10
    while True:  # the pool reconnects (pre-ping) once the server is back
        try:
            s.write([Item(GYM, record(started=T0 + DAY)[1])])
            break
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert s.counts()["sessions"] == 2
    s.close()
