"""Charts as SVG text, drawn on the server: no script, no library, nothing fetched.

Two kinds are enough for the coach's pages:

* :func:`time_chart` -- points and lines of one or more series over dates
  (an athlete's sets over weeks), or bars (alerts per week);
* :func:`timeline` -- one session: bands for the activity states, the sets
  and holds as blocks, the tremor ratio as a line, alerts as marks.

Colours come from CSS classes (``history.css``), so the SVG carries no
style attributes and the pages' strict Content-Security-Policy holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from ..grades import BOUNDS

W, H = 720, 220
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 14, 26


@dataclass(frozen=True)
class Series:
    """``points`` are (x, y); ``kind`` is ``dots``, ``line`` or ``bars``; ``css``: the class."""

    name: str
    points: Sequence[tuple[float, float]]
    kind: str = "dots"
    css: str = "s1"


@dataclass
class _Scale:
    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, v: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.a + (v - self.lo) / span * (self.b - self.a)


def _nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out, v = [], first
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.2g}" if abs(v) < 1 else f"{v:.1f}"


def _date_ticks(lo: float, hi: float) -> list[tuple[float, str]]:
    span = hi - lo
    day = 86400.0
    if span <= 2 * day:
        step = next(
            (s for s in (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600) if span / s <= 8),
            43200.0,
        )
        fmt = "%H:%M"
    elif span <= 70 * day:
        step, fmt = 7 * day, "%d %b"
    else:
        step, fmt = 28 * day, "%b %y"
    first = math.ceil(lo / step) * step
    ticks, t = [], first
    while t <= hi:
        ticks.append((t, time.strftime(fmt, time.localtime(t))))
        t += step
    return ticks[:12]


def _frame(xs: _Scale, ys: _Scale, x_ticks: list[tuple[float, str]], y_label: str) -> list[str]:
    out = [
        (
            f'<rect class="plot" x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" '
            f'height="{H - PAD_T - PAD_B}"/>'
        )
    ]
    for v in _nice_ticks(ys.lo, ys.hi):
        y = ys(v)
        out.append(f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(v)}</text>'
        )
    for t, label in x_ticks:
        x = xs(t)
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{H - 8}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    out.append(f'<text class="axis" x="4" y="{PAD_T - 3}">{escape(y_label)}</text>')
    return out


def _svg(body: list[str], title: str, css: str = "") -> str:
    return (
        f'<svg class="chart {css}" viewBox="0 0 {W} {H}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _legend(series: Sequence[Series]) -> list[str]:
    out, x = [], PAD_L + 8
    for s in series:
        out.append(
            f'<rect class="{s.css} key" x="{x}" y="{PAD_T + 4}" width="10" height="10"/>'
            f'<text class="legend" x="{x + 14}" y="{PAD_T + 13}">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return out


def time_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    x_range: tuple[float, float],
    y_min: float | None = 0.0,
    bands: Sequence[tuple[float, str]] = (),
    bar_width_s: float = 7 * 86400.0,
) -> str:
    """Series over dates. ``bands`` are horizontal reference lines (value, label)."""
    ys_all = [y for s in series for _, y in s.points] + [v for v, _ in bands]
    if not ys_all:
        return _svg(
            [
                (
                    f'<text class="empty" x="{W / 2}" y="{H / 2}" text-anchor="middle">'
                    "nothing recorded in this period</text>"
                )
            ],
            title,
            "empty",
        )
    lo = min(ys_all) if y_min is None else min(y_min, min(ys_all))
    hi = max(ys_all)
    if hi == lo:
        hi = lo + 1
    hi += (hi - lo) * 0.08
    xs = _Scale(x_range[0], x_range[1], PAD_L + 4, W - PAD_R - 4)
    ys = _Scale(lo, hi, H - PAD_B, PAD_T)
    body = _frame(xs, ys, _date_ticks(*x_range), y_label)
    for v, label in bands:
        y = ys(v)
        body.append(
            f'<line class="band" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" '
            f'y2="{y:.1f}"/><text class="bandlabel" x="{W - PAD_R - 2}" '
            f'y="{y - 3:.1f}" text-anchor="end">{escape(label)}</text>'
        )
    for s in series:
        pts = [(xs(x), ys(y)) for x, y in s.points]
        if s.kind == "line" and len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            body.append(f'<polyline class="{s.css} line" points="{path}"/>')
        elif s.kind == "bars":
            bw = max(2.0, xs(x_range[0] + bar_width_s) - xs(x_range[0]) - 2)
            base = ys(max(lo, 0.0))
            body.extend(
                f'<rect class="{s.css} bar" x="{x - bw / 2:.1f}" y="{min(y, base):.1f}" '
                f'width="{bw:.1f}" height="{abs(base - y):.1f}"/>'
                for x, y in pts
            )
        else:
            body.extend(
                f'<circle class="{s.css} dot" cx="{x:.1f}" cy="{y:.1f}" r="2.6"/>' for x, y in pts
            )
    body.extend(_legend(series))
    return _svg(body, title)


@dataclass
class Timeline:
    """What one session's timeline shows."""

    start: float
    end: float
    states: list[tuple[float, float, str]] = field(default_factory=list)  # (t0, t1, state)
    blocks: list[tuple[float, float, str, str]] = field(default_factory=list)  # t0, t1, kind, label
    ratio: list[tuple[float, float]] = field(default_factory=list)
    ratio_max: list[tuple[float, float]] = field(default_factory=list)
    alerts: list[tuple[float, str, str]] = field(default_factory=list)  # (t, level, code)


def timeline(tl: Timeline, *, title: str) -> str:
    """States as coloured bands, sets/holds as blocks, the ratio line, alert marks."""
    height, lane = 300, 28
    end = max(tl.end, tl.start + 60)
    xs = _Scale(tl.start, end, PAD_L + 4, W - PAD_R - 4)
    ratios = [y for _, y in tl.ratio + tl.ratio_max] or [1.0]
    hi = max(max(ratios) * 1.1, 4.5)
    top = PAD_T + 2 * lane + 8
    ys = _Scale(0.0, hi, height - PAD_B, top)
    body = [
        (
            f'<rect class="plot" x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" '
            f'height="{height - PAD_T - PAD_B}"/>'
        ),
        f'<text class="axis" x="4" y="{PAD_T + lane / 2 + 4}">state</text>',
        f'<text class="axis" x="4" y="{PAD_T + lane * 1.5 + 4}">sets</text>',
    ]
    for t0, t1, state in tl.states:
        x0, x1 = xs(max(t0, tl.start)), xs(min(t1, end))
        body.append(
            f'<rect class="state-{escape(state)}" x="{x0:.1f}" y="{PAD_T + 2}" '
            f'width="{max(1.0, x1 - x0):.1f}" height="{lane - 4}">'
            f"<title>{escape(state)}</title></rect>"
        )
    for t0, t1, kind, label in tl.blocks:
        x0, x1 = xs(t0), xs(t1)
        body.append(
            f'<rect class="block-{escape(kind)}" x="{x0:.1f}" y="{PAD_T + lane + 2}" '
            f'width="{max(2.0, x1 - x0):.1f}" height="{lane - 4}">'
            f"<title>{escape(label)}</title></rect>"
        )
    for v, label in BOUNDS:
        y = ys(v)
        body.append(
            f'<line class="band" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" '
            f'y2="{y:.1f}"/><text class="bandlabel" x="{W - PAD_R - 2}" y="{y - 3:.1f}" '
            f'text-anchor="end">{label}</text>'
        )
    for v in _nice_ticks(0.0, hi):
        body.append(
            f'<text class="tick" x="{PAD_L - 4}" y="{ys(v) + 4:.1f}" '
            f'text-anchor="end">{_fmt(v)}</text>'
        )
    body.append(f'<text class="axis" x="4" y="{top + 10}">ratio</text>')
    for pts, css in ((tl.ratio_max, "s2"), (tl.ratio, "s1")):
        if len(pts) > 1:
            path = " ".join(f"{xs(x):.1f},{ys(y):.1f}" for x, y in pts)
            body.append(f'<polyline class="{css} line" points="{path}"/>')
        elif pts:
            body.append(
                f'<circle class="{css} dot" cx="{xs(pts[0][0]):.1f}" '
                f'cy="{ys(pts[0][1]):.1f}" r="3"/>'
            )
    for t, level, code in tl.alerts:
        x = xs(min(max(t, tl.start), end))
        body.append(
            f'<path class="alert-{escape(level)}" d="M{x:.1f},{top - 6} l-5,-9 h10 z">'
            f"<title>{escape(code)} ({escape(level)})</title></path>"
        )
    for t, label in _date_ticks(tl.start, end):
        body.append(
            f'<text class="tick" x="{xs(t):.1f}" y="{height - 8}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    return (
        f'<svg class="chart timeline" viewBox="0 0 {W} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )
