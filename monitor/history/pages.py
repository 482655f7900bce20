"""The coach's pages as HTML text, and their CSV twins: pure functions of what the store returns.

Kept apart from the web server so that a page is a function from rows to
text, tested without a socket. Every value that came from a station or a
person is escaped; links carry URL-quoted ids.
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from ..grades import BOUNDS
from .charts import Series, Timeline, time_chart, timeline

WEEK = 7 * 86400.0


def q(value: str) -> str:
    return quote(value, safe="")


def when(ts: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return time.strftime(fmt, time.localtime(ts)) if ts is not None else ""


def num(v: float | None, digits: int = 1) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def athlete_label(athlete: str, display_name: str | None) -> str:
    return f"{display_name} ({athlete[:10]})" if display_name else athlete


def page(title: str, body: str, *, nav: str = "", display_url: str = "/") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} &middot; Gym history</title>
<link rel="stylesheet" href="/history.css">
<script src="/staff.js" defer></script><script src="/history.js" defer></script>
</head><body>
<header class="top"><a class="brand" href="/athletes">Gym history</a>
<nav><a href="/athletes">Athletes</a> <a href="/alerts">Alert log</a>
<a href="{escape(display_url)}">Wall board</a> {nav}</nav>
<span class="who" id="who"></span>
<button type="button" class="logout" id="logout" hidden>Log out</button></header>
<main>
<h1>{escape(title)}</h1>
{body}
</main></body></html>"""


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        # A cell that a spreadsheet would run as a formula is quoted as text.
        writer.writerow(["'" + c if isinstance(c, str) and c[:1] in "=+-@\t\r" else c for c in row])
    return out.getvalue()


# --------------------------------------------------------------------------- athletes


ATHLETE_CSV = (
    "gym",
    "athlete",
    "display_name",
    "sessions",
    "first_session",
    "last_session",
    "alerts",
)


def athletes_page(rows: list[dict[str, Any]], *, display_url: str) -> str:
    body = table(
        ("Athlete", "Gym", "Sessions", "Last session", "Alerts"),
        (
            (
                (
                    f'<a href="/athletes/{q(r["gym"])}/{q(r["athlete"])}">'
                    f"{escape(athlete_label(r['athlete'], r['display_name']))}</a>"
                ),
                escape(r["gym"]),
                str(r["sessions"]),
                when(r["last_ts"]),
                str(r["alerts"]),
            )
            for r in rows
        ),
        "athletes",
    )
    if not rows:
        body = '<p class="empty">No athlete has finished a session yet.</p>'
    return page(
        "Athletes",
        f'<p><a class="csv" href="/athletes.csv">CSV</a></p>{body}',
        display_url=display_url,
    )


def athletes_csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(
        ATHLETE_CSV,
        (
            (
                r["gym"],
                r["athlete"],
                r["display_name"] or "",
                r["sessions"],
                when(r["first_ts"]),
                when(r["last_ts"]),
                r["alerts"],
            )
            for r in rows
        ),
    )


def _weekly(history: dict[str, Any], since: float) -> list[dict[str, Any]]:
    weeks: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for s in history["sessions"]:
        w = int((s["started_ts"] - since) // WEEK)
        weeks[w]["sessions"].append(1)
        if s["sweat_rate_l_per_h"] is not None:
            weeks[w]["sweat"].append(s["sweat_rate_l_per_h"])
    for x in history["sets"]:
        w = int((x["start_ts"] - since) // WEEK)
        for key in ("ratio_median", "ratio_peak", "recovery_s", "growth_per_min"):
            if x[key] is not None:
                weeks[w][key].append(x[key])
    for a in history["alerts"]:
        weeks[int((a["raised_ts"] - since) // WEEK)]["alerts"].append(1)
    out = []
    for w in sorted(weeks, reverse=True):
        d = weeks[w]

        def med(k: str, d: dict[str, list[float]] = d) -> float | None:
            return statistics.median(d[k]) if d[k] else None

        out.append(
            {
                "week_ts": since + w * WEEK,
                "sessions": len(d["sessions"]),
                "sets": len(d["ratio_median"]),
                "ratio_median": med("ratio_median"),
                "ratio_peak": max(d["ratio_peak"]) if d["ratio_peak"] else None,
                "growth_per_min": med("growth_per_min"),
                "recovery_s": med("recovery_s"),
                "sweat_rate_l_per_h": med("sweat"),
                "alerts": len(d["alerts"]),
            }
        )
    return out


def _points(
    rows: Iterable[dict[str, Any]], x: str, y: str, scale: float = 1.0
) -> list[tuple[float, float]]:
    """The (x, y * scale) points of the rows that have a ``y``."""
    return [(r[x], scale * r[y]) for r in rows if r[y] is not None]


def athlete_page(
    gym: str,
    athlete: str,
    display_name: str | None,
    profile: Any,
    history: dict[str, Any],
    *,
    since: float,
    until: float,
    weeks: int,
    display_url: str,
) -> str:
    rng = (since, until)
    sets, holds = history["sets"], history["holds"]
    charts = [
        time_chart(
            [
                Series(
                    "median",
                    _points(sets, "start_ts", "ratio_median"),
                    css="s1",
                ),
                Series(
                    "peak",
                    _points(sets, "start_ts", "ratio_peak"),
                    css="s2",
                ),
            ],
            title="Tremor ratio per set",
            y_label="x rested",
            x_range=rng,
            bands=BOUNDS,
        ),
        time_chart(
            [
                Series(
                    "growth",
                    _points(sets, "start_ts", "growth_per_min"),
                    css="s3",
                )
            ],
            title="Within-set growth",
            y_label="ratio / min",
            x_range=rng,
            y_min=None,
        ),
        time_chart(
            [
                Series(
                    "recovery",
                    _points(sets, "start_ts", "recovery_s"),
                    css="s4",
                )
            ],
            title="Recovery time after each set",
            y_label="s",
            x_range=rng,
        ),
        time_chart(
            [
                Series(
                    "duration",
                    _points(holds, "start_ts", "duration_s"),
                    css="s5",
                ),
                Series(
                    "peak ratio x10",
                    _points(holds, "start_ts", "ratio_peak", scale=10),
                    css="s2",
                ),
            ],
            title="Static holds",
            y_label="s",
            x_range=rng,
        ),
        time_chart(
            [
                Series(
                    "sweat rate",
                    _points(history["sessions"], "started_ts", "sweat_rate_l_per_h"),
                    kind="line",
                    css="s6",
                )
            ],
            title="Sweat rate per session",
            y_label="l/h",
            x_range=rng,
        ),
        time_chart(
            [
                Series(
                    level,
                    _per_week([a for a in history["alerts"] if a["level"] == level], since),
                    kind="bars",
                    css=f"alert-{level}",
                )
                for level in ("caution", "warning", "urgent", "info")
                if any(a["level"] == level for a in history["alerts"])
            ],
            title="Alerts per week",
            y_label="alerts",
            x_range=rng,
        ),
    ]
    names = ("ratio", "growth", "recovery", "holds", "sweat", "alerts")
    figures = "".join(
        f'<figure class="fig-{n}">{c}</figure>' for n, c in zip(names, charts, strict=True)
    )
    weekly = table(
        (
            "Week of",
            "Sessions",
            "Sets",
            "Median ratio",
            "Peak ratio",
            "Growth /min",
            "Recovery s",
            "Sweat l/h",
            "Alerts",
        ),
        (
            (
                when(w["week_ts"], "%d %b %Y"),
                str(w["sessions"]),
                str(w["sets"]),
                num(w["ratio_median"], 2),
                num(w["ratio_peak"], 2),
                num(w["growth_per_min"], 2),
                num(w["recovery_s"], 0),
                num(w["sweat_rate_l_per_h"], 2),
                str(w["alerts"]),
            )
            for w in _weekly(history, since)
        ),
        "weekly",
    )
    sessions = table(
        ("Session", "Station", "Sets", "Holds", "Peak ratio", "Sweat l/h", "Alerts"),
        (
            (
                f'<a href="/sessions/{q(gym)}/{q(s["id"])}">{when(s["started_ts"])}</a>',
                escape(s["station"]),
                str(s["set_count"]),
                str(s["hold_count"]),
                num(s["ratio_peak"], 2),
                num(s["sweat_rate_l_per_h"], 2),
                str(s["alert_count"]),
            )
            for s in reversed(history["sessions"])
        ),
        "sessions",
    )
    base = f"/athletes/{q(gym)}/{q(athlete)}"
    periods = " ".join(
        f'<a href="{base}?weeks={n}"{" class=on" if n == weeks else ""}>{n} weeks</a>'
        for n in (4, 12, 26, 52)
    )
    baselines = (
        ", ".join(
            f"{escape(k)} {v:.1f} mg"
            for k, v in sorted((profile.baselines_mg if profile else {}).items())
        )
        or "none yet"
    )
    mass = f"{profile.body_mass_g / 1000:.1f} kg" if profile and profile.body_mass_g else "unknown"
    body = f"""
<p class="period">{periods} &middot; <a class="csv" href="{base}.csv?weeks={weeks}">CSV</a>
&middot; <a class="export" href="{base}/export.json">Export everything kept (JSON)</a></p>
<p class="profile">Rested baseline: {baselines}; body mass: {mass}.</p>
<section class="charts">{figures}</section>
<h2>Week by week</h2>{weekly}
<h2>Sessions</h2>{sessions}
<h2>Staff</h2>
<form class="card-form" data-action="{base}/card" data-reload="1">
<label>Name on the wall <input name="display_name" maxlength="40"
 value="{escape(display_name or "")}" required></label>
<button type="submit">Save</button> <span class="result" role="status"></span></form>
<form class="forget-form" data-action="{base}/forget" data-confirm="{escape(athlete)}"
 data-done="/athletes">
<p>Forget this athlete: delete every session, alert, trace and the profile kept about them,
and clear their profile and name from the broker. This cannot be undone.</p>
<label>Type the athlete id to confirm <input name="confirm" autocomplete="off"></label>
<button type="submit" class="danger">Forget</button> <span class="result" role="status"></span>
</form>"""
    return page(athlete_label(athlete, display_name), body, display_url=display_url)


def _per_week(alerts: list[dict[str, Any]], since: float) -> list[tuple[float, float]]:
    counts: dict[int, int] = defaultdict(int)
    for a in alerts:
        counts[int((a["raised_ts"] - since) // WEEK)] += 1
    return [(since + (w + 0.5) * WEEK, n) for w, n in sorted(counts.items())]


SET_CSV = (
    "session_id",
    "station",
    "session_start",
    "set",
    "kind",
    "sensor",
    "start",
    "end",
    "reps",
    "ratio_median",
    "ratio_peak",
    "growth_per_min",
    "recovery_s",
)


def athlete_csv(history: dict[str, Any]) -> str:
    by_id = {s["id"]: s for s in history["sessions"]}
    return csv_text(
        SET_CSV,
        (
            (
                x["session_id"],
                by_id.get(x["session_id"], {}).get("station", ""),
                when(by_id.get(x["session_id"], {}).get("started_ts")),
                x["idx"],
                x["kind"],
                x["sensor"],
                when(x["start_ts"], "%Y-%m-%d %H:%M:%S"),
                when(x["end_ts"], "%Y-%m-%d %H:%M:%S"),
                x["reps"],
                x["ratio_median"],
                x["ratio_peak"],
                x["growth_per_min"],
                x["recovery_s"],
            )
            for x in history["sets"]
        ),
    )


# --------------------------------------------------------------------------- a session


def _states(trace: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    for row in trace:
        state = row["state"] or "unknown"
        t0 = row["minute_ts"]
        if out and out[-1][2] == state and abs(out[-1][1] - t0) < 1:
            out[-1] = (out[-1][0], t0 + 60, state)
        else:
            out.append((t0, t0 + 60, state))
    return out


def session_page(
    gym: str, data: dict[str, Any], display_name: str | None, *, display_url: str
) -> str:
    s = data["session"]
    sensors = sorted({r["sensor"] for r in data["trace"]})
    main_sensor = sensors[0] if sensors else None
    trace = [r for r in data["trace"] if r["sensor"] == main_sensor]
    tl = Timeline(
        start=s["started_ts"],
        end=s["ended_ts"],
        states=_states(trace),
        blocks=[
            (
                x["start_ts"],
                x["end_ts"],
                "set",
                (
                    f"set {x['idx']}: {x['reps'] or '?'} reps, "
                    f"ratio {num(x['ratio_median'], 2)} (peak {num(x['ratio_peak'], 2)})"
                ),
            )
            for x in data["sets"]
        ]
        + [
            (h["start_ts"], h["end_ts"], "hold", f"hold {h['idx']}: {num(h['duration_s'], 0)} s")
            for h in data["holds"]
        ],
        ratio=[(r["minute_ts"] + 30, r["ratio_p50"]) for r in trace if r["ratio_p50"] is not None],
        ratio_max=[
            (r["minute_ts"] + 30, r["ratio_max"]) for r in trace if r["ratio_max"] is not None
        ],
        alerts=[
            (a["raised_ts"], a["level"], a["code"])
            for a in data["alerts"]
            if a["raised_ts"] is not None
        ],
    )
    chart = timeline(tl, title=f"Session at {s['station']}")
    who = (
        "guest"
        if s["athlete"] is None
        else f'<a href="/athletes/{q(gym)}/{q(s["athlete"])}">'
        f"{escape(athlete_label(s['athlete'], display_name))}</a>"
    )
    sets = table(
        (
            "Set",
            "Kind",
            "Sensor",
            "Start",
            "Duration s",
            "Reps",
            "Median ratio",
            "Peak ratio",
            "Growth /min",
            "Recovery s",
        ),
        (
            (
                str(x["idx"]),
                escape(x["kind"]),
                escape(x["sensor"] or ""),
                when(x["start_ts"], "%H:%M:%S"),
                num(x["end_ts"] - x["start_ts"], 0),
                str(x["reps"] or ""),
                num(x["ratio_median"], 2),
                num(x["ratio_peak"], 2),
                num(x["growth_per_min"], 2),
                num(x["recovery_s"], 0),
            )
            for x in data["sets"]
        ),
        "sets",
    )
    holds = table(
        ("Hold", "Sensor", "Start", "Duration s", "Peak ratio", "Fatigue band peak"),
        (
            (
                str(h["idx"]),
                escape(h["sensor"] or ""),
                when(h["start_ts"], "%H:%M:%S"),
                num(h["duration_s"], 0),
                num(h["ratio_peak"], 2),
                num(h["fatigue_ratio_peak"], 2),
            )
            for h in data["holds"]
        ),
        "holds",
    )
    alerts = alert_rows(data["alerts"], gym=None, with_athlete=False)
    rec = s
    hyd = (
        f"Intake {num(rec['intake_ml'], 0)} ml; sweat rate {num(rec['sweat_rate_l_per_h'], 2)}"
        f" l/h; body mass change {num(rec['body_mass_loss_pct'], 1)} %; weigh-ins: "
        + ", ".join(
            f"{escape(w['phase'])} {w['mass_g'] / 1000:.1f} kg at {when(w['ts'], '%H:%M')}"
            for w in data["weigh_ins"]
        )
        if rec["hydration_mode"]
        else "No scale at this station."
    )
    body = f"""
<p class="meta">{who} at <b>{escape(s["station"])}</b>, {when(s["started_ts"])} to
{when(s["ended_ts"], "%H:%M")} ({num((s["ended_ts"] - s["started_ts"]) / 60, 0)} min), ended by
{escape(s["end_reason"] or "?")} &middot;
<a class="csv" href="/sessions/{q(gym)}/{q(s["id"])}.csv">CSV</a></p>
<figure class="fig-timeline">{chart}</figure>
<p class="legend-text">Bands: activity state per minute; blocks: sets and holds; lines: tremor
ratio per minute (median, and peak in the lighter colour); triangles: alerts.</p>
<h2>Sets</h2>{sets}
<h2>Holds</h2>{holds if data["holds"] else '<p class="empty">No static holds.</p>'}
<h2>Alerts</h2>{alerts if data["alerts"] else '<p class="empty">No alerts.</p>'}
<h2>Hydration</h2><p class="hydration">{hyd}</p>"""
    return page(f"Session {when(s['started_ts'])}", body, display_url=display_url)


TRACE_CSV = ("minute", "sensor", "state", "ratio_p50", "ratio_max", "rms_mg_p50", "source")


def session_csv(data: dict[str, Any]) -> str:
    return csv_text(
        TRACE_CSV,
        (
            (
                when(r["minute_ts"]),
                r["sensor"],
                r["state"] or "",
                r["ratio_p50"],
                r["ratio_max"],
                r["rms_mg_p50"],
                r["source"],
            )
            for r in data["trace"]
        ),
    )


# --------------------------------------------------------------------------- alerts


def alert_rows(
    alerts: list[dict[str, Any]],
    *,
    gym: str | None,
    with_athlete: bool = True,
    names: dict[tuple[str, str], str] | None = None,
) -> str:
    names = names or {}
    headers = ["Raised", "Station", "Level", "Alert", "Acknowledged", "By", "Cleared"]
    if with_athlete:
        headers.insert(2, "Athlete")
    rows = []
    for a in alerts:
        row = [
            when(a["raised_ts"], "%Y-%m-%d %H:%M:%S"),
            escape(a["station"]),
            f'<span class="level-{escape(a["level"])}">{escape(a["level"])}</span>',
            escape(a["message"] or a["code"]),
            when(a["acknowledged_ts"], "%H:%M:%S"),
            escape(a["acknowledged_by"] or ""),
            when(a["cleared_ts"], "%H:%M:%S"),
        ]
        if with_athlete:
            athlete = a["athlete"]
            row.insert(
                2,
                ""
                if athlete is None
                else f'<a href="/athletes/{q(a["gym"])}/{q(athlete)}">'
                f"{escape(athlete_label(athlete, names.get((a['gym'], athlete))))}</a>",
            )
        rows.append(row)
    return table(headers, rows, "alerts")


ALERT_CSV = (
    "gym",
    "id",
    "station",
    "athlete",
    "session_id",
    "code",
    "level",
    "red_flag",
    "message",
    "raised",
    "acknowledged",
    "acknowledged_by",
    "cleared",
)


def alerts_page(
    alerts: list[dict[str, Any]], names: dict[tuple[str, str], str], *, days: int, display_url: str
) -> str:
    periods = " ".join(
        f'<a href="/alerts?days={n}"{" class=on" if n == days else ""}>{n} days</a>'
        for n in (1, 7, 30, 365)
    )
    body = (
        f'<p class="period">{periods} &middot; '
        f'<a class="csv" href="/alerts.csv?days={days}">CSV</a></p>'
        + (
            alert_rows(alerts, gym=None, names=names)
            if alerts
            else '<p class="empty">No alerts in this period.</p>'
        )
    )
    return page("Alert log", body, display_url=display_url)


def alerts_csv(alerts: list[dict[str, Any]]) -> str:
    fmt = "%Y-%m-%d %H:%M:%S"
    return csv_text(
        ALERT_CSV,
        (
            (
                a["gym"],
                a["id"],
                a["station"],
                a["athlete"] or "",
                a["session_id"] or "",
                a["code"],
                a["level"],
                a["red_flag"],
                a["message"] or "",
                when(a["raised_ts"], fmt),
                when(a["acknowledged_ts"], fmt),
                a["acknowledged_by"] or "",
                when(a["cleared_ts"], fmt),
            )
            for a in alerts
        ),
    )
