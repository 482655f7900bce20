"""The tremor grade: the one rule, and the project's one statement of 2x and 4x.

Tremor is graded by its ratio to the athlete's own rested level, in log steps
(Elble & McNames 2016): below ``elevated_ratio`` it is normal, from there up to
``high_ratio`` elevated, from ``high_ratio`` up high; a window without a
measurable tremor is ``none``. The defaults are :data:`ELEVATED_RATIO` and
:data:`HIGH_RATIO`; a coach may set others for an athlete, which then travel as
a :class:`monitor.mqtt.messages.Grades` value (in the athlete's profile and the
station's session payload) and grade through :func:`grade` too::

    >>> grade(2.5)
    <TremorLevel.ELEVATED: 'elevated'>
    >>> grade(12.0, measurable=False)
    <TremorLevel.NONE: 'none'>
    >>> from types import SimpleNamespace
    >>> grade(2.5, thresholds=SimpleNamespace(elevated_ratio=1.5, high_ratio=2.5))
    <TremorLevel.HIGH: 'high'>

This module knows nothing of sensors or of MQTT, so the analysis (which grades
each window) and the message format (which carries the grades) both use it.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Protocol

#: From this ratio to the rested baseline up, tremor is elevated (unless a coach says otherwise).
ELEVATED_RATIO = 2.0
#: From this ratio up, tremor is high.
HIGH_RATIO = 4.0


class TremorLevel(StrEnum):
    """The grade of one tremor reading; ``none`` when there is no measurable tremor."""

    NONE = "none"
    NORMAL = "normal"
    ELEVATED = "elevated"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """0 for none .. 3 for high: the worse the higher."""
        return _RANK[self]


_RANK = {level: i for i, level in enumerate(TremorLevel)}

#: Where each grade above normal starts, lowest first (the guides a chart draws).
BOUNDS: tuple[tuple[float, TremorLevel], ...] = (
    (ELEVATED_RATIO, TremorLevel.ELEVATED),
    (HIGH_RATIO, TremorLevel.HIGH),
)


class Thresholds(Protocol):
    """What :func:`grade` reads of a set of grades (``monitor.mqtt.messages.Grades`` has it)."""

    @property
    def elevated_ratio(self) -> float: ...

    @property
    def high_ratio(self) -> float: ...


def grade(
    ratio: float | None, measurable: bool = True, thresholds: Thresholds | None = None
) -> TremorLevel:
    """The grade of ``ratio`` by ``thresholds`` (the defaults if None).

    ``none`` when the reading is not ``measurable``; ``normal`` when the ratio is
    not known (no baseline yet) or not a number.
    """
    if not measurable:
        return TremorLevel.NONE
    elevated, high = (
        (ELEVATED_RATIO, HIGH_RATIO)
        if thresholds is None
        else (thresholds.elevated_ratio, thresholds.high_ratio)
    )
    if ratio is None or not math.isfinite(ratio) or ratio < elevated:
        return TremorLevel.NORMAL
    return TremorLevel.ELEVATED if ratio < high else TremorLevel.HIGH
