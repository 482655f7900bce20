"""The durable outbox: order, acks, replay after restart, bounds, a full disk."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from monitor.mqtt.outbox import Outbox


def alert(i: int) -> bytes:
    return f'{{"id":"a{i}"}}'.encode()


def send_all(outbox: Outbox, first_mid: int = 1) -> list:
    """Take the whole window and pretend paho accepted it with consecutive mids."""
    msgs = outbox.take()
    for n, m in enumerate(msgs):
        outbox.handed(m.id, first_mid + n)
    return msgs


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "outbox.sqlite3"


def test_order_is_preserved(path):
    with Outbox(path, max_inflight=100) as ob:
        for i in range(10):
            ob.add("gym/b/alert", alert(i), kind="alert")
        msgs = ob.take()
    assert [m.payload for m in msgs] == [alert(i) for i in range(10)]
    assert all(m.qos == 1 and not m.retain for m in msgs)


def test_alerts_go_first_but_never_overtake_each_other(path):
    with Outbox(path, max_inflight=100) as ob:
        ob.add("gym/b/x", b"metric-1", kind="metric")
        ob.add("gym/b/alert", alert(1), kind="alert")
        ob.add("gym/b/session", b"s1", kind="session", retain=True)
        ob.add("gym/b/alert", alert(2), kind="alert")
        ob.add("gym/b/x", b"metric-2", kind="metric")
        ob.add("gym/b/alert", alert(3), kind="alert")
        order = [m.payload for m in ob.take()]
    assert order == [alert(1), alert(2), alert(3), b"s1", b"metric-1", b"metric-2"]


def test_ack_removes_only_that_row(path):
    with Outbox(path) as ob:
        for i in range(3):
            ob.add("gym/b/alert", alert(i), kind="alert")
        msgs = send_all(ob, first_mid=10)
        assert ob.acked(11) is True
        assert ob.acked(11) is False  # a duplicate PUBACK changes nothing
        assert ob.acked(999) is False  # a mid that is not ours (e.g. a QoS 0 publish)
        assert [m.payload for m in ob.messages()] == [alert(0), alert(2)]
        assert ob.pending == 2 and ob.inflight == 2
        st = ob.stats()
        assert st.stored == {"alert": 3} and st.acked == {"alert": 1}
        assert msgs[1].payload == alert(1)


def test_puback_before_mapping_is_not_lost(path):
    """paho's thread can deliver the PUBACK before handed() stores mid -> row."""
    with Outbox(path) as ob:
        ob.add("gym/b/alert", alert(0), kind="alert")
        ob.add("gym/b/alert", alert(1), kind="alert")
        first, second = ob.take()
        assert ob.acked(41) is False  # arrives early, while a hand-off is open
        ob.handed(first.id, 41)  # ... and is settled here
        ob.handed(second.id, 42)
        assert [m.payload for m in ob.messages()] == [alert(1)]
        assert ob.stats().acked == {"alert": 1}
        # Once no hand-off is open, stray mids are not remembered: a later row that
        # reuses a number must not be acknowledged by an old stray ack.
        assert ob.acked(77) is False
        ob.add("gym/b/alert", alert(2), kind="alert")
        (third,) = ob.take()
        ob.handed(third.id, 77)
        assert ob.pending == 2


def test_window_bounds_what_is_in_flight(path):
    with Outbox(path, max_inflight=5) as ob:
        for i in range(12):
            ob.add("gym/b/alert", alert(i), kind="alert")
        first = send_all(ob, 1)
        assert len(first) == 5 and ob.take() == []
        for mid in (1, 2):
            ob.acked(mid)
        more = send_all(ob, 100)
        assert [m.payload for m in more] == [alert(5), alert(6)]


def test_restart_replays_unacked_in_order(path):
    ob = Outbox(path, max_inflight=3)
    for i in range(6):
        ob.add("gym/b/alert", alert(i), kind="alert")
    send_all(ob, 1)
    ob.acked(1)  # only a0 was acknowledged
    ob.close()

    again = Outbox(path, max_inflight=100)  # a new process: nothing is in flight
    msgs = again.take()
    assert [m.payload for m in msgs] == [alert(i) for i in range(1, 6)]
    for n, m in enumerate(msgs):
        again.handed(m.id, n + 1)
    assert again.stats().resent == {"alert": 5}
    again.close()


def test_state_is_coalesced_but_in_flight_rows_are_kept(path):
    with Outbox(path) as ob:
        ob.add("gym/b/session", b"s1", kind="session", retain=True, coalesce=True)
        send_all(ob, 1)  # s1 is with paho now
        ob.add("gym/b/session", b"s2", kind="session", retain=True, coalesce=True)
        ob.add("gym/b/session", b"s3", kind="session", retain=True, coalesce=True)
        ob.add("gym/b/alert", alert(0), kind="alert")
        assert [m.payload for m in ob.messages()] == [alert(0), b"s1", b"s3"]
        assert ob.stats().coalesced == {"session": 1}
        assert all(m.retain for m in ob.messages() if m.kind == "session")


def test_bound_drops_oldest_metrics_never_alerts(path, caplog):
    with Outbox(path, max_rows=5) as ob:
        ob.add("gym/b/x", b"m0", kind="metric")
        ob.add("gym/b/alert", alert(0), kind="alert")
        ob.add("gym/b/x", b"m1", kind="metric")
        ob.add("gym/b/session", b"s0", kind="session")
        ob.add("gym/b/x", b"m2", kind="metric")
        ob.add("gym/b/alert", alert(1), kind="alert")  # 6 rows: m0 must go
        assert [m.payload for m in ob.messages()] == [alert(0), alert(1), b"s0", b"m1", b"m2"]
        for i in range(2, 8):
            ob.add("gym/b/alert", alert(i), kind="alert")
        # every non-alert gone, every alert kept although that is over the bound
        assert [m.payload for m in ob.messages()] == [alert(i) for i in range(8)]
        with caplog.at_level(logging.ERROR, logger="monitor.mqtt.outbox"):
            ob.add("gym/b/x", b"late metric", kind="metric")  # the new metric itself goes
        assert [m.payload for m in ob.messages()] == [alert(i) for i in range(8)]
        st = ob.stats()
        assert st.dropped == {"metric": 4, "session": 1} and "alert" not in st.dropped
        assert st.pending == 8


def test_byte_bound(path):
    with Outbox(path, max_bytes=400) as ob:
        for _ in range(10):
            ob.add("gym/b/x", b"x" * 50, kind="metric")
        st = ob.stats()
        assert st.pending_bytes <= 400 and st.pending == 400 // (50 + len("gym/b/x"))
        assert st.dropped["metric"] == 10 - st.pending


def test_alerts_over_the_bound_are_logged_loudly(path, caplog):
    with (
        caplog.at_level(logging.ERROR, logger="monitor.mqtt.outbox"),
        Outbox(path, max_rows=3) as ob,
    ):
        for i in range(5):
            ob.add("gym/b/alert", alert(i), kind="alert")
        assert ob.pending == 5
    assert any("keeping every alert" in r.getMessage() for r in caplog.records)


def fill_until_full(ob: Outbox, kind: str, size: int = 2000) -> int:
    n = 0
    while True:
        row = ob.add("gym/b/x", bytes([65 + n % 26]) * size, kind=kind)
        if row is None or row < 0:  # dropped, or held in memory: the file is full
            return n
        n += 1
        assert n < 10_000, "the page limit never bit"


def test_full_disk_drops_metrics_and_stores_the_alert(path, caplog):
    with Outbox(path, max_rows=100_000, max_bytes=10**9, page_limit=60) as ob:
        with caplog.at_level(logging.ERROR, logger="monitor.mqtt.outbox"):
            n = 0
            while not ob.stats().dropped:  # metrics keep fitting until the disk is full
                assert ob.add("gym/b/x", bytes([65 + n % 26]) * 2000, kind="metric") is not None
                n += 1
                assert n < 1000, "the page limit never bit"
            # on a full disk a new metric still goes in, at the cost of the oldest ones
            assert [m.payload[:1] for m in ob.messages()][-1] == bytes([65 + (n - 1) % 26])
            assert ob.add("gym/b/alert", alert(0) * 300, kind="alert") is not None
        assert any("disk is full" in r.getMessage() for r in caplog.records)
        kinds = [m.kind for m in ob.messages()]
        assert kinds[0] == "alert" and kinds.count("alert") == 1
        assert ob.stats().dropped["metric"] >= 10


def test_full_disk_of_alerts_holds_the_alert_in_memory_and_sends_it(path, caplog):
    with (
        caplog.at_level(logging.ERROR, logger="monitor.mqtt.outbox"),
        Outbox(path, page_limit=60) as ob,
    ):
        n = fill_until_full(ob, "alert")  # n stored, the next one held
        assert n > 5 and ob.held == 1
        row = ob.add("gym/b/alert", b"y" * 2000, kind="alert")
        assert row is not None and row < 0  # held in memory, not dropped, not raised
        later = ob.add("gym/b/alert", b"w" * 10, kind="alert")
        assert later < row < 0  # queues behind it, in order
        assert ob.pending == n + 3 and ob.held == 3
        assert ob.add("gym/b/x", b"z" * 2000, kind="metric") is None  # a metric is just dropped
        assert ob.stats().dropped == {"metric": 1}
        # The held rows are handed to paho like the rest, after the stored alerts, in order.
        sent, mids = [], {}
        while len(sent) < n + 3:
            msgs = ob.take()
            assert msgs
            for m in msgs:
                mids[m.id] = 1000 + len(sent)
                sent.append(m)
                ob.handed(m.id, mids[m.id])
                if m.id > 0:
                    ob.acked(mids[m.id])  # the broker takes the stored ones
        assert [m.payload for m in sent[-2:]] == [b"y" * 2000, b"w" * 10]
        assert all(m.id > 0 for m in sent[:n]) and all(m.id < 0 for m in sent[n:])
        assert ob.acked(mids[row]) is True  # the PUBACK forgets a held row
        assert ob.held == 2 and ob.pending == 2
    full = [r.getMessage() for r in caplog.records if "disk is full" in r.getMessage()]
    assert len(full) == 1, full  # once a minute, not once per message
    assert any(
        "held in memory" in r.getMessage() and "lost with this stop" in r.getMessage()
        for r in caplog.records
    )


def test_held_alerts_move_into_the_file_when_there_is_room(path, caplog, monkeypatch):
    import monitor.mqtt.outbox as outbox_module

    monkeypatch.setattr(outbox_module, "MIGRATE_EVERY_S", 0.0)
    with (
        caplog.at_level(logging.WARNING, logger="monitor.mqtt.outbox"),
        Outbox(path, page_limit=60) as ob,
    ):
        n = fill_until_full(ob, "alert")
        held = [ob.add("gym/b/alert", f"held-{i}".encode(), kind="alert") for i in range(3)]
        assert all(r < 0 for r in held) and ob.held == 4
        for k, m in enumerate(ob.take(6)):  # the broker takes six stored alerts
            ob.handed(m.id, k + 1)
            ob.acked(k + 1)
        ob.add("gym/b/alert", b"new", kind="alert")
        assert ob.held == 0 and ob.pending == n - 6 + 5
        payloads = [m.payload for m in ob.messages()]
        assert payloads[-4:] == [b"held-0", b"held-1", b"held-2", b"new"]
    assert any("has room again" in r.getMessage() for r in caplog.records)


def test_retained_state_is_held_newest_only_on_a_full_disk(path):
    with Outbox(path, page_limit=60) as ob:
        fill_until_full(ob, "alert")
        for i in range(5):
            assert (
                ob.add(
                    "gym/b/alerts/active",
                    f"list-{i}".encode(),
                    kind="alerts_active",
                    retain=True,
                    coalesce=True,
                )
                < 0
            )
        held = ob.held_messages()
        assert [m.payload for m in held][1:] == [b"list-4"] and held[
            1
        ].retain  # after the held alert


def test_a_failed_delete_is_not_sent_again_and_again(path, monkeypatch):
    with Outbox(path) as ob:
        ob.add("gym/b/alert", alert(0), kind="alert")
        ob.add("gym/b/alert", alert(1), kind="alert")
        first = ob.take(1)[0]
        ob.handed(first.id, 1)
        real = ob._db

        class NoDelete:
            def __getattr__(self, name):
                return getattr(real, name)

            def execute(self, sql, *args):
                if sql.startswith("DELETE"):
                    raise sqlite3.OperationalError("database or disk is full")
                return real.execute(sql, *args)

        monkeypatch.setattr(ob, "_db", NoDelete())
        assert ob.acked(1)
        assert [m.payload for m in ob.take()] == [alert(1)]  # the acknowledged row is not re-sent
        assert ob.pending == 1
        monkeypatch.setattr(ob, "_db", real)
        ob.add("gym/b/x", b"m", kind="metric")  # the file takes writes again
        assert [m.payload for m in ob.messages()] == [alert(1), b"m"]


def test_alert_rows_are_written_with_full_sync(path, monkeypatch):
    """Alerts are committed with synchronous=FULL, everything else with NORMAL."""
    ob = Outbox(path)
    seen = []
    real = ob._db

    class Spy:
        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if sql.startswith("INSERT"):
                seen.append(real.execute("PRAGMA synchronous").fetchone()[0])
            return real.execute(sql, *args)

    monkeypatch.setattr(ob, "_db", Spy())
    ob.add("gym/b/alert", alert(0), kind="alert")
    ob.add("gym/b/session", b"s", kind="session")
    assert seen == [2, 1]  # 2 = FULL, 1 = NORMAL
    assert real.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    monkeypatch.undo()
    ob.close()


def test_refused_alert_is_held_until_reconnect(path):
    with Outbox(path) as ob:
        ob.add("gym/b/alert", alert(0), kind="alert")
        ob.add("gym/b/x", b"m", kind="metric")
        send_all(ob, 1)
        assert ob.refused(1).payload == alert(0)
        assert ob.refused(2).payload == b"m"
        assert [m.payload for m in ob.messages()] == [alert(0)]  # the alert is kept ...
        assert ob.take() == []  # ... but not retried at once
        ob.reconnected()
        assert [m.payload for m in ob.take()] == [alert(0)]


def test_concurrent_adds_and_acks(path):
    ob = Outbox(path, max_inflight=20)
    n = 300

    def producer():
        for i in range(n):
            ob.add("gym/b/alert", alert(i), kind="alert")

    t = threading.Thread(target=producer)
    t.start()
    mid, sent = 0, []
    while len(sent) < n:
        for m in ob.take():
            mid += 1
            ob.handed(m.id, mid)
            sent.append(m.payload)
            ob.acked(mid)
    t.join()
    assert sent == [alert(i) for i in range(n)]
    assert ob.pending == 0
    ob.close()


def fill_file(path, n=300):
    with Outbox(path) as ob:
        for i in range(n):
            ob.add("gym/b/alert", alert(i) + b" " * 200, kind="alert")


def damage_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 100)


def damage_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def damage_page_two(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4096:8192] = bytes(range(256)) * 16
    path.write_bytes(bytes(data))


def damage_zero(path: Path) -> None:
    path.write_bytes(b"")


def damage_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "something").write_text("x")


def damage_wal_directory(path: Path) -> None:
    Path(f"{path}-wal").mkdir()


def damage_wal_garbage(path: Path) -> None:
    Path(f"{path}-wal").write_bytes(b"\x37\x7f\x06\x82" + b"garbage" * 1000)


DAMAGE = {
    "garbage": (damage_garbage, False),
    "half": (damage_half, True),
    "page two": (damage_page_two, True),
    "zero length": (damage_zero, False),
    "a directory": (damage_directory, False),
    "a directory as the WAL": (damage_wal_directory, True),
    "a garbage WAL": (damage_wal_garbage, None),
}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_damaged_file_is_moved_aside_salvaged_and_replaced(path, caplog, name):
    damage, salvageable = DAMAGE[name]
    path.parent.mkdir(parents=True)
    fill_file(path)
    damage(path)
    with caplog.at_level(logging.INFO, logger="monitor.mqtt.outbox"), Outbox(path) as ob:
        assert not ob.in_memory
        got = [m.payload for m in ob.messages()]
        # whatever was salvaged is a prefix-free, in-order subset of what was queued,
        # nothing invented
        queued = [alert(i) + b" " * 200 for i in range(300)]
        assert got == [p for p in queued if p in set(got)]
        ob.add("gym/b/alert", b"after", kind="alert")
        assert ob.messages()[-1].payload == b"after"
    if salvageable is None:  # SQLite ignores a WAL whose checksums fail: nothing is damaged
        assert len(got) == 300
        return
    critical = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and "damaged" in critical[0] and "moved" in critical[0], critical
    assert list(path.parent.glob("outbox.sqlite3.damaged-*"))
    if salvageable:
        assert len(got) > 0 and (len(got) < 300 or name != "half"), len(got)
        assert f"{len(got)} message(s) salvaged" in critical[0]
    if name == "zero length":
        assert "empty (0 bytes)" in critical[0]
    # and the next start is clean: no more complaints
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monitor.mqtt.outbox"), Outbox(path) as again:
        assert again.messages()[-1].payload == b"after"
    assert not caplog.records


def test_a_file_that_cannot_be_made_runs_in_memory(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with (
        caplog.at_level(logging.CRITICAL, logger="monitor.mqtt.outbox"),
        Outbox(blocker / "outbox.sqlite3") as ob,
    ):
        assert ob.in_memory
        assert ob.add("gym/b/alert", alert(0), kind="alert") > 0
        assert [m.payload for m in ob.take()] == [alert(0)]
    assert any(
        "runs in memory" in r.getMessage() and "file" in r.getMessage() for r in caplog.records
    )


def test_file_is_plain_sqlite_for_diagnosis(path):
    with Outbox(path) as ob:
        ob.add("gym/b/alert", alert(0), kind="alert")
    rows = sqlite3.connect(path).execute("SELECT topic, kind, qos FROM outbox").fetchall()
    assert rows == [("gym/b/alert", "alert", 1)]
