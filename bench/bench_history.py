"""The history service under a chain-sized floor: loss, ingest lag, page time, CPU, memory, size.

    .venv/bin/python -m bench.bench_history [--stations 500] [--seconds 60] [--postgres] [--wall]

1. Real station payloads: one simulated station (the real station runner on
   simulated chips, ``gym-monitor demo --stations 1``) publishes to a real
   Mosquitto for ``--capture`` seconds; every message it sends is recorded with
   its time, so the replay keeps the real rates (tremor at 2 Hz per sensor,
   session and hydration on change, alerts as they came).
2. ``--stations`` light publishers (one paho client each, spread over a few
   processes) replay those payloads, each under its own station id, with ``ts``
   set to the moment of publishing and alert ids made unique per station; each
   checks an athlete in and publishes session records (built with the message
   classes) during the run.
3. The history service runs as its own process (``gym-monitor history``) on
   SQLite, or on a real PostgreSQL with ``--postgres``; its CPU share and RSS
   are read from /proc over the run.

Printed: messages lost (QoS 1 kinds, published vs stored, target 0); store
ingest lag p50/p95 (commit time minus the payload's ``ts``, measured by the
service, target p95 <= 1 s); the athlete page's load time with a year of that
athlete's history (HTTP, logged in, 20 loads while the floor publishes, target
p95 <= 300 ms): "rendered anew" loads each follow a change to what the page
shows (a new name through the page's own form), so each is read from the
database and rendered; "kept" loads are of a page nothing has changed since;
the CPU and memory of the service's whole process tree (its render worker
too); the database's size per athlete-year (a separate store holding five
athletes' years); the machine's load average around the floor.

``--wall`` also runs the wall display service and headless Chromium on its
page (``?bench=1``) on the same broker and prints the publish-to-paint p95 of
the floor's tremor messages (target <= 250 ms): each tremor message's
``rms_mg`` is made unique to its station for the run, so the page's paint
records name the message they show; the rest of the load is unchanged.
``--live-trace`` picks the service's ``[history] live_trace`` (default
``auto``: the stations' summaries, their 2 Hz feed only without them).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.display.staff import StaffFile
from monitor.history import incoming, synthetic
from monitor.history.config import LIVE_TRACE
from monitor.history.store import HistoryStore, Item, sqlite_url
from monitor.mqtt import messages as m
from monitor.mqtt.messages.homeassistant import SensorSummary
from tests.support.mosquitto import MosquittoBroker

ROOT = Path(__file__).resolve().parents[1]
QOS1_KINDS = ("session_record", "alert", "athlete", "hydration")
STAFF, PIN = "Bench Coach", "bench-pin-2024"


# --------------------------------------------------------------------------- /proc


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the service's render worker and its helpers), from each
    process's parent in /proc/<pid>/stat (task/*/children needs a kernel option)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):  # it ended meanwhile
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time of the service and every process it started (utime + stime)."""
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of the service and its processes together."""
    total = 0
    for p in tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(x.split()[1]) for x in lines if x.startswith("VmRSS:"))
    return total / 1024


# --------------------------------------------------------------------------- 1. capture


def capture(broker: MosquittoBroker, seconds: float) -> list[tuple[float, str, bytes]]:
    """What one simulated station publishes in ``seconds``: (t, kind, payload)."""
    got: list[tuple[float, str, bytes]] = []
    retained: set[str] = set()
    start = time.monotonic()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-capture")
    sub.on_connect = lambda c, *a: c.subscribe("gym/+/#", qos=1)

    def on_message(client, userdata, msg):
        parts = msg.topic.split("/")
        kind = "/".join(parts[2:])
        if msg.retain or kind in ("athlete", "session", "hydration", "alerts/active", "status"):
            retained.add("/".join(parts[1:]))
        if (
            kind in ("tremor", "session", "hydration", "alert") or kind.startswith("ha/sensor/")
        ) and (not msg.retain and msg.payload):
            got.append((time.monotonic() - start, kind, bytes(msg.payload)))

    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.loop_start()
    time.sleep(0.5)
    start = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "demo",
            "--stations",
            "1",
            "--seconds",
            str(seconds),
            "--broker",
            f"{broker.host}:{broker.port}",
            "--http-port",
            "0",
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    # The simulated station's retained state would reach the store with old times
    # and count as ingest lag: clear it, the floor replays its payloads anyway.
    for topic in {f"gym/{t}" for t in retained}:
        sub.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    sub.disconnect()
    sub.loop_stop()
    if run.returncode != 0 or not any(k == "tremor" for _, k, _ in got):
        raise RuntimeError(f"the simulated station did not publish: {run.stderr[-800:]}")
    first = got[0][0]
    return [(t - first, k, p) for t, k, p in got]


def stand_in_script(seconds: float) -> list[tuple[float, str, bytes]]:
    """When the simulated station cannot run: its traffic as captured before, built with the
    message classes (two sensors at 2 Hz and their Home Assistant summaries every 5 s,
    hydration every ~4.5 s, one alert)."""
    out: list[tuple[float, str, bytes]] = []
    rng = random.Random(7)
    for k in range(int(seconds * 2)):
        for sensor, placement in (("wrist", m.Placement.LIMB), ("bench", m.Placement.BENCH)):
            ratio = max(0.5, rng.gauss(1.4, 0.4))
            out.append(
                (
                    k / 2,
                    "tremor",
                    m.Tremor(
                        station="bench-1",
                        sensor=sensor,
                        placement=placement,
                        rms_mg=8 * ratio,
                        peak_hz=8.0,
                        ratio=ratio,
                        level=m.DEFAULT_GRADES.level(ratio),
                        measurable=True,
                        window_s=2.5,
                    ).to_json(),
                )
            )
    for k in range(int(seconds / 5)):
        for sensor, placement in (("wrist", m.Placement.LIMB), ("bench", m.Placement.BENCH)):
            ratio = max(0.5, rng.gauss(1.4, 0.3))
            out.append(
                (
                    k * 5 + 0.1,
                    f"ha/sensor/{sensor}",
                    SensorSummary(
                        station="bench-1",
                        sensor=sensor,
                        placement=placement,
                        rms_mg=8 * ratio,
                        ratio=ratio,
                        ratio_max=ratio * 1.3,
                        peak_hz=8.0,
                        level=m.DEFAULT_GRADES.level(ratio),
                        windows=10,
                    ).to_json(),
                )
            )
    for k in range(int(seconds / 4.5)):
        out.append(
            (
                k * 4.5,
                "hydration",
                m.Hydration(
                    station="bench-1",
                    mode=m.HydrationMode.BOTTLE,
                    mass_g=600.0 - 10 * k,
                    intake_ml=10.0 * k,
                ).to_json(),
            )
        )
    out.append(
        (
            seconds / 3,
            "alert",
            m.AlertEvent(
                station="bench-1",
                id="bench-1:1:0001",
                code="tremor.high",
                level=m.AlertLevel.WARNING,
                state=m.AlertState.RAISED,
                message="Tremor is high",
                raised_ts=time.time(),
            ).to_json(),
        )
    )
    return sorted(out, key=lambda e: e[0])


# --------------------------------------------------------------------------- 2. the floor


def _station_ids(n: int) -> list[str]:
    return [f"st-{i:03d}" for i in range(n)]


def publisher(
    host: str,
    port: int,
    ids: list[str],
    script: list[tuple[float, str, bytes]],
    seconds: float,
    counts: mp.Queue,
    seed: int,
    mark: bool = False,
) -> None:
    """One process: a paho client per station, replaying ``script`` in a loop for ``seconds``.

    ``mark`` (``--wall``): each tremor message's ``rms_mg`` becomes a number unique to its
    station for the run (the wall paints it as text), and (station, text, wall time just
    before publishing) of each is sent back, so the wall's paint of each can be timed.
    """
    rng = random.Random(seed)
    marks: list[tuple[str, str, float]] = []
    marked = dict.fromkeys(ids, 0)
    clients = {}
    for sid in ids:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{sid}")
        c.max_queued_messages_set(0)
        c.max_inflight_messages_set(1000)
        c.connect(host, port, keepalive=60)
        c.loop_start()
        clients[sid] = c
    time.sleep(1.0)
    sent = {k: 0 for k in QOS1_KINDS}
    sent["tremor"] = 0
    infos = []
    period = script[-1][0] + 1.0
    now = time.time()
    for sid, c in clients.items():
        athlete = f"a{sid.replace('st-', '')}"
        infos.append(
            c.publish(
                f"gym/{sid}/athlete",
                json.dumps(
                    {
                        "v": 1,
                        "ts": now,
                        "station": sid,
                        "athlete": athlete,
                        "guest": False,
                        "since_ts": now,
                        "source": "tag",
                        "profile": "applied",
                    }
                ),
                qos=1,
                retain=True,
            )
        )
        sent["athlete"] += 1
    # Each station: one offset into the script, one session record at a random moment.
    offsets = {sid: rng.uniform(0, period) for sid in ids}
    record_at = {sid: rng.uniform(0.2, 0.9) * seconds for sid in ids}
    events = []
    for sid in ids:
        t = -offsets[sid]
        loop = 0
        while t < seconds:
            for at, kind, payload in script:
                if 0 <= t + at < seconds:
                    events.append((t + at, sid, kind, payload, loop))
            t += period
            loop += 1
        events.append((record_at[sid], sid, "session_record", b"", 0))
        # Every station also raises, acknowledges and clears one alert of its own.
        t_alert = rng.uniform(0.1, 0.6) * seconds
        for dt, state in ((0, "raised"), (8, "acknowledged"), (20, "cleared")):
            ack: dict[str, Any] = {"by": "Ana"} if state == "acknowledged" else {}
            events.append(
                (
                    t_alert + dt,
                    sid,
                    "alert",
                    m.AlertEvent(
                        station=sid,
                        id="bench-1:tremor.high:own",
                        code="tremor.high",
                        level=m.AlertLevel.WARNING,
                        state=m.AlertState(state),
                        message="Tremor is high: 4.2x your rested level",
                        advice="Rest longer",
                        raised_ts=time.time(),
                        **ack,
                    ).to_json(),
                    0,
                )
            )
    events.sort(key=lambda e: e[0])
    start = time.monotonic()
    for at, sid, kind, payload, loop in events:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stamp = time.time()
        if kind == "session_record":
            rec = synthetic.session_record_message(
                station=sid,
                athlete=f"a{sid.replace('st-', '')}",
                started_ts=stamp - rng.uniform(1200, 2400),
                seed=seed,
            )
            data = json.loads(rec.to_json())
            data["ts"] = stamp
        else:
            data = json.loads(payload)
            data["station"] = sid
            data["ts"] = stamp
            if kind == "alert":
                data["id"] = f"{sid}:{loop}:{data['id']}"
            if mark and kind == "tremor":
                k = marked[sid] = marked[sid] + 1
                data["rms_mg"] = round(10.0 + (k % 9000) * 0.1, 1)
                marks.append((sid, f"{data['rms_mg']:.1f} mg", time.time()))
        qos = 0 if kind == "tremor" else 1
        info = clients[sid].publish(
            f"gym/{sid}/{kind}",
            json.dumps(data),
            qos=qos,
            retain=kind == "hydration" or kind.startswith("ha/"),
        )
        if qos:
            infos.append(info)
        sent[kind] = sent.get(kind, 0) + 1
    for info in infos:
        info.wait_for_publish(30)
    for c in clients.values():
        c.disconnect()
        c.loop_stop()
    counts.put((sent, marks))


# --------------------------------------------------------------------------- the wall (--wall)

#: Tremor published this long after the floor's first is timed (the tiles exist by then).
WALL_WARMUP_S = 10.0


class Wall:
    """The wall display service on the floor's broker, in headless Chromium with its bench
    hook (``?bench=1``: when each tile's new RMS text was painted, wall clock, as
    bench/bench_display.py reads it)."""

    def __init__(self, broker: MosquittoBroker, stations: int, work: Path):
        from playwright.sync_api import sync_playwright

        from tests.support.display import CHROMIUM, CHROMIUM_ARGS

        toml = work / "display.toml"
        # A board for the whole floor (the default holds 200 stations).
        toml.write_text(f"[board]\nmax_stations = {stations}\n")
        self.service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor.display",
                "--mqtt-port",
                str(broker.port),
                "--http-host",
                "127.0.0.1",
                "--http-port",
                "0",
                "--log-level",
                "WARNING",
                "--config",
                str(toml),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert self.service.stdout is not None
        url = self.service.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"wall display did not start: {url!r}")
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        self.page = self._browser.new_page(viewport={"width": 1920, "height": 1080})
        self.page.goto(url + "?bench=1")
        self.page.wait_for_function("window.__displayBench !== undefined", timeout=15000)

    def records(self) -> tuple[int, list[dict]]:
        """(tiles on the board, paint records)."""
        tiles = self.page.evaluate("document.querySelectorAll('.tile').length")
        return tiles, self.page.evaluate("window.__displayBench.records")

    def close(self) -> None:
        if self.service.poll() is not None:
            return  # closed already
        with contextlib.suppress(Exception):  # Chromium gone already: nothing to stop
            self._browser.close()
        with contextlib.suppress(Exception):
            self._pw.stop()
        self.service.terminate()
        try:
            self.service.wait(20)
        except subprocess.TimeoutExpired:  # busy with the floor's backlog: not measured here
            self.service.kill()
            self.service.wait(10)


def paint_latencies(
    marks: list[tuple[str, str, float]], records: list[dict], until: float
) -> tuple[list[float], int]:
    """Publish -> painted (s) of each marked tremor message from the floor's first plus
    ``WALL_WARMUP_S`` to ``until``; and how many of those the wall never painted (a newer
    reading of the station came in the same push, or the tile showed its other sensor)."""
    painted: dict[tuple[str, str], float] = {}
    for rec in records:
        painted.setdefault((rec["s"], rec["v"]), rec["t"] / 1000.0)
    start = min((t for _, _, t in marks), default=0.0) + WALL_WARMUP_S
    timed = [(sid, text, t) for sid, text, t in marks if start <= t <= until]
    lat = [painted[(sid, text)] - t for sid, text, t in timed if (sid, text) in painted]
    return lat, len(timed) - len(lat)


# --------------------------------------------------------------------------- 3. the service


def start_service(
    state: Path, port: int, database: str, staff: Path, live_trace: str = "auto"
) -> tuple[subprocess.Popen, str]:
    toml = state / "history.toml"
    toml.write_text(
        f'[history]\ngym = "bench"\nstate_dir = "{state}"\ndatabase = "{database}"\n'
        f'live_trace = "{live_trace}"\n'
        f'[mqtt]\nport = {port}\nclient_id = "history-bench"\n'
        f'[web]\nport = 0\nstaff_file = "{staff}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "history", "--config", str(toml)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError(f"history service did not start: {url!r}")
    return proc, url


class Http:
    def __init__(self, url: str):
        self.host, port = url.split("//")[1].rstrip("/").split(":")
        self.port = int(port)
        self.cookie = ""
        self.csrf = ""

    def request(self, method: str, path: str, body: dict | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Host": f"{self.host}:{self.port}"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers.update(
                {"Content-Type": "application/json", "Origin": f"http://{self.host}:{self.port}"}
            )
        conn.request(method, path, body=data, headers=headers)
        reply = conn.getresponse()
        payload = reply.read()
        cookie = reply.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        conn.close()
        return reply.status, payload

    def health(self) -> dict:
        return json.loads(self.request("GET", "/healthz")[1])


def year_of(athlete: str, station: str, end: float, per_week: int = 4) -> list[bytes]:
    rng = random.Random(athlete)
    out = []
    for week in range(52):
        for k in range(per_week):
            started = end - (week * 7 + k * 1.7) * 86400 - rng.uniform(0, 3600)
            out.append(
                synthetic.session_record_message(
                    station=station,
                    athlete=athlete,
                    started_ts=started,
                    seed=week,
                    sets=rng.randint(4, 7),
                    holds=rng.randint(0, 2),
                ).to_json()
            )
    return out


def write_year(store: HistoryStore, gym: str, athlete: str, station: str, end: float) -> int:
    items = []
    for data in year_of(athlete, station, end):
        rec = incoming.session_record(station, data)
        items.append(Item(gym, rec))
        # What else a session leaves: the check-in, a few scale readings.
        items.append(
            Item(
                gym,
                incoming.Presence(station, rec.started_ts, athlete, False, rec.started_ts, "tag"),
            )
        )
        for i in range(6):
            t = rec.started_ts + i * (rec.ended_ts - rec.started_ts) / 5
            items.append(
                Item(
                    gym,
                    incoming.HydrationSample(
                        station, t, "bottle", (600.0 - 40 * i, 40.0 * i, None, None, None, None)
                    ),
                )
            )
    for i in range(0, len(items), 200):
        store.write(items[i : i + 200])
    return len(items)


def size_per_athlete_year(database: str, athletes: int = 5) -> float:
    store = HistoryStore(database, gym="size")
    store.migrate()
    empty = store.size_bytes()
    for n in range(athletes):
        write_year(store, "size", f"y{n}", f"bench-{n}", time.time())
    size = (store.size_bytes() - empty) / athletes
    store.close()
    return size


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument(
        "--capture",
        type=float,
        default=40.0,
        help="seconds of one simulated station to record and replay",
    )
    ap.add_argument("--processes", type=int, default=4, help="publisher processes")
    ap.add_argument(
        "--no-tremor",
        action="store_true",
        help="leave the 2 Hz tremor feed out (to see what it costs the store)",
    )
    ap.add_argument(
        "--live-trace",
        choices=LIVE_TRACE,
        default="auto",
        help="what the store reads the per-minute trace from ([history] live_trace)",
    )
    ap.add_argument(
        "--wall",
        action="store_true",
        help="also run the wall display in headless Chromium on the same broker and time "
        "each tremor message from publish to paint (their rms_mg made unique to be told apart)",
    )
    ap.add_argument(
        "--postgres",
        action="store_true",
        help="the store on a real PostgreSQL (tests/support/postgres.py) not SQLite",
    )
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    broker = MosquittoBroker(work / "broker", extra_config="max_queued_messages 100000\n")
    broker.start()
    server = service = wall = None
    try:
        print(f"# capturing {args.capture:g} s of one simulated station ...", flush=True)
        try:
            script = capture(broker, args.capture)
        except RuntimeError as err:
            print(
                f"# could not run the simulated station ({str(err)[-160:]!r}); replaying its "
                "traffic as built by the message classes instead"
            )
            script = stand_in_script(args.capture)
        kinds = {
            k: sum(1 for _, kk, _ in script if kk.startswith(k))
            for k in ("tremor", "ha/sensor", "session", "hydration", "alert")
        }
        print(
            f"# captured {len(script)} messages over {script[-1][0]:.0f} s: {kinds} "
            f"(tremor {kinds['tremor'] / max(1.0, script[-1][0]):.1f}/s per station)"
        )
        # The store replays what a station sends, minus `session` (not stored).
        script = [
            (t, k, p)
            for t, k, p in script
            if k != "session" and not (args.no_tremor and k == "tremor")
        ]

        if args.postgres:
            from tests.support.postgres import PostgresServer

            server = PostgresServer(durable=True).start()
            database, size_db = server.create_database("bench"), server.create_database("size")
        else:
            database, size_db = "", sqlite_url(work / "size.sqlite3")
        staff = work / "staff.json"
        StaffFile(staff).add(STAFF, PIN)
        state = work / "state"
        state.mkdir()
        service, url = start_service(state, broker.port, database, staff, args.live_trace)
        http = Http(url)
        deadline = time.monotonic() + 20
        while not http.health().get("connected") and time.monotonic() < deadline:
            time.sleep(0.2)

        # A year of history for one athlete, written before the floor starts.
        store = HistoryStore(database or sqlite_url(state / "history.sqlite3"), gym="bench")
        t = time.monotonic()
        rows = write_year(store, "bench", "year1", "bench-year", time.time() - 86400)
        print(f"# a year for athlete year1: {rows} items written in {time.monotonic() - t:.1f} s")
        status, _ = http.request("POST", "/api/login", {"name": STAFF, "pin": PIN})
        assert status == 200, status
        http.csrf = json.loads(http.request("GET", "/api/me")[1])["csrf"]
        renamed = 0

        def page_times(n: int, cold: bool) -> list[float]:
            """``n`` loads of the page; ``cold``: each just after a change to what it shows
            (a new name, through the pages' own form), so each is read and rendered anew."""
            nonlocal renamed
            out = []
            for _ in range(n):
                if cold:
                    renamed += 1
                    status, _ = http.request(
                        "POST", "/athletes/bench/year1/card", {"display_name": f"Year {renamed}"}
                    )
                    assert status == 200, status
                t0 = time.perf_counter()
                status, body = http.request("GET", "/athletes/bench/year1?weeks=52")
                out.append(time.perf_counter() - t0)
                assert status == 200 and b"fig-ratio" in body, status
                if cold:
                    assert f"Year {renamed}".encode() in body  # rendered after the change
            return out

        idle_cold, idle_kept = page_times(10, True), page_times(10, False)

        if args.wall:
            wall = Wall(broker, args.stations, work)
        ids = _station_ids(args.stations)
        counts: mp.Queue = mp.Queue()
        chunks = [ids[i :: args.processes] for i in range(args.processes)]
        procs = [
            mp.Process(
                target=publisher,
                args=(broker.host, broker.port, chunk, script, args.seconds, counts, i, args.wall),
            )
            for i, chunk in enumerate(chunks)
        ]
        # The transport's own lag, for comparison: a bare subscriber to the same QoS 1 kinds.
        probe_lags: list[float] = []
        probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
        probe.on_connect = lambda c, *a: c.subscribe(
            [("gym/+/alert", 1), ("gym/+/hydration", 1), ("gym/+/session_record", 1)]
        )
        probe.on_message = lambda c, u, msg: (
            probe_lags.append(time.time() - json.loads(msg.payload)["ts"])
            if msg.payload and not msg.retain
            else None
        )
        probe.connect(broker.host, broker.port)
        probe.loop_start()
        pid = service.pid
        helpers = len(tree(pid)) - 1
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        rss_peak = rss_mib(pid)
        load_before = os.getloadavg()
        for p in procs:
            p.start()
        time.sleep(3 + args.seconds / 2)
        busy_cold, busy_kept = page_times(20, True), page_times(20, False)
        # Each publisher's report is read as it comes: a child does not end before its
        # report (a large one with --wall) has gone through the queue's pipe.
        reports: list[tuple[dict[str, int], list[tuple[str, str, float]]]] = []
        give_up = time.monotonic() + args.seconds + 120
        while len(reports) < len(procs) and time.monotonic() < give_up:
            rss_peak = max(rss_peak, rss_mib(pid))
            with contextlib.suppress(queue.Empty):
                reports.append(counts.get(timeout=0.5))
        for p in procs:
            p.join(10)
        if len(reports) < len(procs):
            raise RuntimeError(f"{len(procs) - len(reports)} publisher(s) sent no report")
        load_during = os.getloadavg()
        sent: dict[str, int] = {}
        marks: list[tuple[str, str, float]] = []
        for part, marked in reports:
            marks.extend(marked)
            for k, v in part.items():
                sent[k] = sent.get(k, 0) + v
        floor_end = time.time()
        if wall is not None:
            time.sleep(1.0)  # the last messages reach the screen
            tiles, records = wall.records()
            wall.close()
        # Drain: everything published is either stored or still queued at the broker.
        drain_deadline = time.monotonic() + 120
        last = None
        while time.monotonic() < drain_deadline:
            h = http.health()
            rss_peak = max(rss_peak, rss_mib(pid))
            key = (h["stored"], h["duplicates"], h["pending"])
            if h["pending"] == 0 and key == last:
                break
            last = key
            time.sleep(1.0)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
        probe.disconnect()
        probe.loop_stop()
        health = http.health()
        with store.engine.connect() as conn:
            import sqlalchemy as sa

            from monitor.history import schema as s

            def count(q):
                return conn.execute(q).scalar_one()

            floor = s.sessions.c.station.like("st-%")
            got = {
                "session_record": count(sa.select(sa.func.count()).where(floor)),
                # Live alert events only (ids "<station>:<loop>:<captured id>"), not the
                # alerts inside session records.
                "alert": count(
                    sa.select(sa.func.count())
                    .select_from(s.alert_events)
                    .where(
                        s.alert_events.c.station.like("st-%"),
                        s.alert_events.c.id.like("st-%:%:bench-%"),
                    )
                ),
                "athlete": count(
                    sa.select(sa.func.count())
                    .select_from(s.checkins)
                    .where(s.checkins.c.station.like("st-%"))
                ),
                "hydration": count(
                    sa.select(sa.func.count())
                    .select_from(s.hydration)
                    .where(s.hydration.c.station.like("st-%"))
                ),
            }
            minutes = count(
                sa.select(sa.func.count())
                .select_from(s.trace)
                .where(s.trace.c.station.like("st-%"), s.trace.c.source == "live")
            )
        store.close()
        service.send_signal(signal.SIGTERM)
        service.wait(30)

        print(
            f"\nhistory service, {args.stations} stations, {args.seconds:g} s, "
            f"{'PostgreSQL' if args.postgres else 'SQLite'}"
            f"{', with the wall in Chromium' if wall is not None else ''}; {os.cpu_count()} CPUs, "
            f"load average {load_before[0]:.1f} before the floor, "
            f"{load_during[0]:.1f} (1 min) at its end"
        )
        lost = 0
        for k in QOS1_KINDS:
            missing = sent.get(k, 0) - got[k]
            lost += max(0, missing)
            print(
                f"  {k:15s} published {sent.get(k, 0):7d}  stored {got[k]:7d}  "
                f"lost {max(0, missing)}"
            )
        print(f"messages lost (QoS 1 kinds)      {lost}   (target 0)")
        tremor = sent.get("tremor", 0)
        summaries = sum(v for k, v in sent.items() if k.startswith("ha/sensor/"))
        print(
            f"live feeds (QoS 0)               tremor {tremor} and summaries {summaries} "
            f"published; {health['tremor_samples']} folded into minutes, "
            f"{health.get('tremor_skipped', 0)} tremor dropped unread "
            f"(live_trace {args.live_trace}); kept as {minutes} sensor-minute rows"
        )
        print(
            f"ingest lag p50 / p95 / max       {health['lag_p50_s']} / {health['lag_p95_s']} / "
            f"{health['lag_max_s']} s   (target p95 <= 1 s)"
        )

        def q(values: list[float], n: int) -> list[float]:
            # inclusive: a p95 of 20 loads lies between the two slowest, never beyond the max
            return statistics.quantiles(values, n=n, method="inclusive")

        if len(probe_lags) > 20:
            print(
                f"  (publish -> a bare subscriber, same messages: p50 "
                f"{statistics.median(probe_lags):.3f} s, p95 {q(probe_lags, n=20)[-1]:.3f} s: "
                "the load generator and the broker's share)"
            )

        def ms(times: list[float]) -> str:
            return (
                f"median {1000 * statistics.median(times):.0f} ms, "
                f"p95 {1000 * q(times, n=20)[-1]:.0f} ms, max {1000 * max(times):.0f} ms"
            )

        print(f"athlete page, a year, idle: rendered   {ms(idle_cold)}")
        print(f"                            kept       {ms(idle_kept)}")
        print(f"  under load: rendered anew            {ms(busy_cold)}   (target <= 300 ms)")
        print(f"              kept (nothing new)       {ms(busy_kept)}")
        print(
            f"store writes                     {health['batches']} batches, "
            f"{health['write_s']:.1f} s in the database in all"
        )
        print(
            f"service CPU                      {100 * cpu:.0f} % of one core (its processes, over "
            "the run and the drain)"
        )
        print(
            f"service memory                   peak RSS {rss_peak:.0f} MiB (with its "
            f"{helpers} helper process(es))"
        )
        if wall is not None:
            lat, unpainted = paint_latencies(marks, records, floor_end)
            if lat:
                print(
                    f"wall publish -> paint           p50 {1000 * statistics.median(lat):.0f} "
                    f"ms, p95 {1000 * q(lat, n=20)[-1]:.0f} ms, max {1000 * max(lat):.0f} ms"
                    "   (target p95 <= 250 ms)"
                )
            print(
                f"  ({len(lat)} tremor messages painted, {unpainted} not (coalesced or the "
                f"tile's other sensor); {tiles} tiles on the board)"
            )
        size = size_per_athlete_year(size_db)
        print(
            f"database size per athlete-year   {size / 1e6:.1f} MB (208 sessions, their sets, "
            "holds, alerts, per-minute trace, check-ins, scale readings)"
        )
    finally:
        if wall is not None:
            wall.close()
        if service is not None and service.poll() is None:
            service.send_signal(signal.SIGTERM)
            service.wait(30)
        broker.close()
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
