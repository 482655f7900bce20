"""Chaos: does every alert reach the wall display through chip faults, outages, crashes, full disks?

    .venv/bin/python -m bench.chaos [--stations 3] [--minutes 60] [--seed 1] [--speed 12] [--quick]

What runs. Only the I2C chips are simulated; everything else is the real thing:

* ``--stations`` :class:`~monitor.runner.StationRunner` instances (what ``gym-monitor run``
  uses), each in its own thread on its own :class:`~monitor.clock.SimClock`, advanced by the
  poll interval per cycle and paced at ``--speed`` simulated seconds per wall second, so an
  hour of gym takes minutes and MQTT keeps up. Scenarios are chosen to raise alerts: static
  holds, a tremor that persists after the session, a fall on a body-worn sensor, and the
  sensor faults themselves (``sensor.fault``, ``sensor.overrun``). ``[alerts] cooldown_s`` is
  20 s instead of 120 s so that the same fault raises again soon: more alert traffic to lose.
* one more station, ``killed-1``, as a subprocess (``python -m bench.chaos --child``, the
  same runner on a SimClock, its config read from a TOML file). It is SIGKILLed at random and
  started again on the same state directory, so its SQLite outbox must carry what was not
  yet acknowledged across the crash. It writes each alert event it raises to a journal.
* a real Mosquitto (tests/support/mosquitto.py) with the gym's settings as shipped
  (config/mosquitto: its ACL, client ids bound to user names, so each client logs in as its
  own user) and a password file made with mosquitto_passwd, as the integration tests do;
  persistence is on, so a restarted broker still holds the witness's session.
* the witness (tests/support/witness.py): a persistent-session (MQTT 5, clean_start false)
  QoS 1 subscriber logged in as ``integrator``, connected straight to the broker, that
  records every alert event by (id, state).

Faults, at random from ``--seed``:

* on the chips, per station, in simulated time, one at a time: NACK bursts and EIO bursts
  (``SimBus.fail``), brownouts (``SimBus.brownout``), a chip that vanishes and comes back
  (``SimBus.vanish(duration)``), FIFO overruns from a stalled loop (no cycle runs while the
  clock jumps past the FIFO's capacity), a stuck chip (``SimBus.stick`` then ``restore``);
* on the network, in wall time: broker restarts (``MosquittoBroker.restart(down_for=...)``,
  a graceful stop); the broker's port unreachable for a while. Stations reach the broker
  through :class:`~tests.support.relay.Relay`, a TCP relay in this process: "refused"
  closes its listening socket and resets every connection (a port without a listener);
  "blackhole" keeps the TCP connections open but relays nothing (a dead Wi-Fi link: only
  MQTT keepalive notices, so stations here use ``keepalive = 5``). The broker itself stays
  up, and so does the witness's direct connection;
* SIGKILL of the station subprocess, and its restart on the same state directory; some
  restarts find the outbox damaged first (truncated to half, garbage on page 2, zero
  length, a directory in its place, a garbage or unreadable WAL): the station must move it
  aside, salvage what it can, and lose no alert (its alert state file holds every event
  the broker has not acknowledged);
* a full disk under the SIGKILLed station, in a window where the network is up: its state
  directory is a real small filesystem (tmpfs, when this runs as root) filled to the last
  byte, and its outbox cannot grow by a page. Alerts then wait in memory and go to the
  broker directly; SIGKILLs inside the window must lose nothing the broker acknowledged,
  and the report says what any kill lost;
* a full disk under one in-process station's outbox (bench-1, which also gets chip faults
  twice as often): when the first network fault begins, its SQLite file is capped at the
  pages it has (``PRAGMA max_page_count``). From then on a backlog fills the "disk": the
  outbox must say so once a minute, drop the oldest metrics, and hold every alert in
  memory, sending it directly;
* session command floods (start/stop hundreds of times over MQTT, the panel button pressed
  in bursts) at every station, and acknowledgements of urgent alerts by a staff name: no
  loop may end, every reply must be "ok" or "busy";
* the real wall display (:class:`monitor.display.service.DisplayService`), restarted a few
  times: at the end what the wall shows (its ``/api/state``) must equal what each station
  holds, and so must each retained ``alerts/active`` (no ghost alerts, none missing);
* a power cut while the scale's calibration is written: a writer subprocess is SIGKILLed in
  the middle of writing the temporary file, between fsync and rename, just after the
  rename, and at random moments; the file must then hold the old or the new calibration,
  never a torn one.

The report gives alert events raised (recorded at the source: the in-process stations'
AlertManager events, and the killed station's journal, which its runner writes through
the ``monitor.alert`` log *before* storing each event) against delivered (unique by (id,
state)) and duplicates; samples acquired and lost per sensor with ImuStats' reasons;
recovery time per fault kind; station restarts; the full disk, the damaged outboxes, the
floods, the display. Exit status 1 if any alert event was lost, a station loop failed, a
retained active list or the wall disagrees with a station, or a calibration file was torn;
else 0.

The package, one job a module: :mod:`.options` (what a run does), :mod:`.ledger` (raised
against delivered), :mod:`.witness` (the broker, the witness, the wall), :mod:`.stations` (the
in-process stations), :mod:`.killed` (the SIGKILLed one), :mod:`.chips`, :mod:`.network`,
:mod:`.staff` and :mod:`.power_cuts` (the faults), :mod:`.run` (playing them),
:mod:`.collect` and :mod:`.report` (what happened), :mod:`.cli`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chips import CHIP_FAULTS
    from .cli import main
    from .ledger import Ledger, Raised
    from .options import KILLED_ID, RECOVERY_TARGET_S, Options
    from .power_cuts import CUT_POINTS, CutResult, calibration_power_cuts
    from .report import Report, format_report
    from .run import run_chaos

#: where each public name lives. Imported when first asked for, so that the subprocesses a run
#: starts (``python -m bench.chaos --child``) load only what they use, and start as quickly as a
#: station does.
_HOME = {
    "CHIP_FAULTS": "chips",
    "main": "cli",
    "Ledger": "ledger",
    "Raised": "ledger",
    "KILLED_ID": "options",
    "RECOVERY_TARGET_S": "options",
    "Options": "options",
    "CUT_POINTS": "power_cuts",
    "CutResult": "power_cuts",
    "calibration_power_cuts": "power_cuts",
    "Report": "report",
    "format_report": "report",
    "run_chaos": "run",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)


__all__ = [
    "CHIP_FAULTS",
    "CUT_POINTS",
    "KILLED_ID",
    "RECOVERY_TARGET_S",
    "CutResult",
    "Ledger",
    "Options",
    "Raised",
    "Report",
    "calibration_power_cuts",
    "format_report",
    "main",
    "run_chaos",
]
