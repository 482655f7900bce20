"""The plan of a run's faults in wall time (broker restarts, a refused or blackholed link,
SIGKILLs, the full disk, floods, display restarts, acks), and how long reconnecting took."""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field

from .options import DAMAGE, Options
from .stations import StationThread


@dataclass
class NetFault:
    """A planned fault or event in wall time; for network faults, when each station was back.

    Network faults: "broker restart", "link refused", "link blackhole". The killed station:
    "SIGKILL" (``damage`` names what is done to its outbox before the restart, if anything),
    "disk full" and "disk room". Others: "flood", "display restart", "ack".
    """

    kind: str
    at: float  # planned start, seconds after the run began
    duration: float
    down_at: float = 0.0  # monotonic
    up_at: float = 0.0  # monotonic: the broker accepts again / the link relays again / respawn
    reconnect_s: dict[str, float | None] = field(default_factory=dict)
    overlapped: bool = False  # a SIGKILL restart while the network was down
    damage: str | None = None


NETWORK = ("broker restart", "link refused", "link blackhole")


def plan_network(rng: random.Random, wall_s: float, options: Options) -> list[NetFault]:
    """Network faults, SIGKILLs, full disk, floods, display restarts, acks: none in the last 15 %.

    The killed station's disk is full in one window (40-52 % of the run; 60-80 % in a quick
    run) with two SIGKILLs inside it (one in a quick run) and no network fault near it: with
    the broker reachable a kill may lose nothing the broker acknowledged. Every other SIGKILL
    outside it damages the outbox, in turn through DAMAGE. A quick run has exactly two broker
    restarts and two refused links in its first half and three SIGKILLs, so a short test
    still sees a couple of each.
    """
    quiet_from = wall_s * 0.85
    plan: list[NetFault] = []
    if options.quick:
        faults = [
            NetFault(
                kind,
                0.0,
                rng.uniform(0.3, 1.0) if kind == "broker restart" else rng.uniform(3.5, 4.5),
            )
            for kind in ("broker restart", "link refused", "broker restart", "link refused")
        ]
        # 2.5 s apart: longer than paho's reconnect backoff, so each fault's reconnect is its own
        t = 3.0
        for f in faults:
            f.at = t
            t += f.duration + 2.5
        plan += faults
        net_end = t - 2.5
        window = (net_end + 1.0, max(net_end + 5.0, quiet_from - 0.5))
        kills = [
            NetFault("SIGKILL", 4.0, 0.0, damage=DAMAGE[options.seed % len(DAMAGE)]),
            NetFault(
                "SIGKILL", wall_s * 0.35, 0.0, damage=DAMAGE[(options.seed + 2) % len(DAMAGE)]
            ),
            NetFault("SIGKILL", sum(window) / 2, 0.0),
        ]
        # floods once the network faults are over (a station that is away gets no command)
        others = [
            NetFault("flood", net_end + 0.5, 0.0),
            NetFault("flood", window[0] + 1.0, 0.0),
            NetFault("display restart", wall_s * 0.45, 0.0),
            NetFault("ack", net_end + 2.0, 0.0),
            NetFault("ack", window[1] - 1.0, 0.0),
        ]
    else:
        window = (wall_s * 0.40, wall_s * 0.52)
        kinds = ["broker restart", "link refused", "broker restart", "link blackhole"]
        t = rng.uniform(3.0, 6.0)
        for i in itertools.count():
            if t >= quiet_from:
                break
            kind = kinds[i % len(kinds)]
            if kind == "broker restart":
                # Short outages keep paho's reconnect backoff (0.5 s, doubling) under the 2 s
                # target;
                # longer ones show what the backoff costs.
                duration = rng.uniform(2.0, 6.0) if rng.random() < 0.3 else rng.uniform(0.3, 1.0)
            elif kind == "link refused":
                duration = rng.uniform(4.0, 12.0)  # a backlog that overflows the full disk
            else:
                duration = rng.uniform(8.0, 15.0)
            if t < window[1] + 8.0 and t + duration > window[0] - 8.0:
                t = window[1] + 8.0  # the network stays up around the full disk
                continue
            plan.append(NetFault(kind, t, duration))
            t += duration + rng.uniform(8.0, 20.0)
        kills = [
            NetFault("SIGKILL", window[0] + (window[1] - window[0]) * f, 0.0)
            for f in (1 / 3, 2 / 3)
        ]
        t, n = rng.uniform(4.0, 7.0), 0
        while t < quiet_from:
            if not window[0] - 2.0 <= t <= window[1] + 2.0:
                damage = DAMAGE[(n // 2) % len(DAMAGE)] if n % 2 == 0 else None
                kills.append(NetFault("SIGKILL", t, 0.0, damage=damage))
                n += 1
            t += rng.uniform(8.0, 25.0)
        others = [NetFault("display restart", wall_s * f, 0.0) for f in (0.25, 0.5, 0.75)]
        t = rng.uniform(10.0, 20.0)
        while t < quiet_from:
            others.append(NetFault("flood", t, 0.0))
            t += rng.uniform(30.0, 60.0)
        t = rng.uniform(8.0, 15.0)
        while t < quiet_from:
            others.append(NetFault("ack", t, 0.0))
            t += rng.uniform(15.0, 30.0)
    if options.kill:
        plan += kills
        plan += [
            NetFault("disk full", window[0], window[1] - window[0]),
            NetFault("disk room", window[1], 0.0),
        ]
    if not options.display:
        others = [o for o in others if o.kind != "display restart"]
    return sorted(plan + others, key=lambda f: f.at)


def watch_reconnects(
    fault: NetFault, stations: list[StationThread], before: dict[str, int], timeout: float = 60.0
) -> threading.Thread:
    """In the background: when each station's publisher made a new connection after
    ``fault.up_at``."""

    def watch() -> None:
        waiting = {s.id: s for s in stations}
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for sid, s in list(waiting.items()):
                pub = s.runner.publisher if s.runner else None
                if pub is not None and pub.connected and pub.stats().connects > before[sid]:
                    fault.reconnect_s[sid] = max(0.0, time.monotonic() - fault.up_at)
                    del waiting[sid]
            time.sleep(0.01)
        for sid in waiting:
            fault.reconnect_s[sid] = None

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def connects(stations: list[StationThread]) -> dict[str, int]:
    return {
        s.id: s.runner.publisher.stats().connects if s.runner and s.runner.publisher else 0
        for s in stations
    }


def squeeze_disk(station: StationThread) -> int:
    """Cap the station's outbox file at the pages it has now: the disk is full from here on.

    This is what ``Outbox(page_limit=...)`` does when it opens a file; the runner opens
    its outbox itself, so the same PRAGMA goes to that connection. Returns the cap.
    """
    outbox = station.runner.outbox
    with outbox._lock:  # the outbox's own lock: no insert runs while the cap is set
        pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
        outbox._db.execute(f"PRAGMA max_page_count={int(pages)}")
    return int(pages)
