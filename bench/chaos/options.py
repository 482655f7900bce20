"""What one chaos run does, and the knobs its stations are set to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: the repository: where the subprocesses of a run start (``python -m bench.chaos ...``)
ROOT = Path(__file__).resolve().parents[2]

#: a chip counts as recovered quickly when data flows within this long of it being usable again
RECOVERY_TARGET_S = 2.0
#: how long the alert cooldown is at the chaos stations (the default 120 s would mute repeats)
COOLDOWN_S = 20.0
#: an acknowledged urgent alert sounds again after this long at the chaos stations
ACK_SILENCE_S = 60.0
#: MQTT keepalive at the chaos stations: the least the config allows, so a blackhole is noticed
KEEPALIVE_S = 5
WITNESS_USER = "integrator"
OPERATOR_USER = "operator"
DISPLAY_USER = "display"
KILLED_ID = "killed-1"
#: what is done to the killed station's outbox before some restarts, in turn
DAMAGE = ("half", "page two", "zero length", "directory", "garbage WAL", "WAL directory")
#: session commands per flood, per station; panel button presses per flood
FLOOD_COMMANDS = 120
FLOOD_PRESSES = 6
#: how long a flood waits for its stations to be online (a reconnect after a fault takes a second or
#: two)
FLOOD_WAIT_S = 15.0


@dataclass(frozen=True)
class Options:
    """What one chaos run does. ``quick`` shortens every fault for the test suite."""

    stations: int = 3
    minutes: float = 60.0
    seed: int = 1
    speed: float = 12.0  # simulated seconds per wall second
    quick: bool = False
    kill: bool = True  # run the SIGKILLed subprocess station
    calibration_cuts: int = 24
    chip_gap_s: float = 12.0  # mean simulated time between chip faults, per station
    workdir: Path | None = None  # keep the files here (default: a temporary directory)
    display: bool = True  # the real wall display as a witness

    @property
    def wall_s(self) -> float:
        """Wall time the stations need for ``minutes`` of simulated time."""
        return self.minutes * 60.0 / self.speed
