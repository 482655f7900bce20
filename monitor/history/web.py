"""The coach's pages: an aiohttp application beside the wall board, behind the staff login.

The login is the display's own (:mod:`monitor.display.auth`: the same staff
file and argon2 hashes, sessions in a cookie, a CSRF token for every change)
and so is the request hygiene (:mod:`monitor.display.guards`: Host names,
same-origin, a strict Content-Security-Policy). The login page and its
scripts are the display's files, served from here too.

Routes (all GET pages are staff only; ``.csv`` beside each page)::

    /athletes                          every athlete known
    /athletes/<gym>/<athlete>?weeks=N  sessions over weeks; display name; forget; export
    /sessions/<gym>/<id>               one session's timeline
    /alerts?days=N                     the alert log
    POST /athletes/<gym>/<athlete>/card    {"display_name": "Sam"}
    POST /athletes/<gym>/<athlete>/forget  {"confirm": "<athlete>"}
    /healthz                           counters, no personal data

Each page is read and rendered by a :class:`~.render.Renderer` (a worker
process by default, ``[web] render_workers``), so neither a slow query nor
the ingest ever stalls the loop, and a page never stalls the ingest. An
athlete's page is kept once rendered until the store commits a change to
what it shows (a session, an alert, the profile, the name) or for
``PAGE_MAX_AGE_S`` (its weeks are counted from now).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from ..display.auth import StaffAuth, read_json
from ..display.config import DisplayConfig
from ..display.guards import guard_middleware, refuse, security_headers_on_errors
from ..display.staff import StaffDirectory
from . import render as views
from .config import WebSettings
from .incoming import ATHLETE_ID
from .render import Renderer
from .store import HistoryStore

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
DISPLAY_STATIC = Path(__file__).parent.parent / "display" / "static"
OWN_STATIC = {
    "/history.css": ("history.css", "text/css; charset=utf-8"),
    "/history.js": ("history.js", "text/javascript; charset=utf-8"),
}
# The display's login page and scripts, served as they are.
SHARED_STATIC = {
    "/login": ("login.html", "text/html; charset=utf-8"),
    "/login.js": ("login.js", "text/javascript; charset=utf-8"),
    "/staff.js": ("staff.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
GYM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DISPLAY_NAME = re.compile(r"[^\x00-\x1f\x7f<>]{1,40}")
MAX_BODY = 4096
HTML = "text/html"
CSV = "text/csv"
#: An athlete's rendered page is kept at most this long (its time axis ends at "now").
PAGE_MAX_AGE_S = 300.0
PAGE_CACHE_SIZE = 64


class PageCache:
    """Rendered athlete pages, each kept while the store's version of that athlete holds."""

    def __init__(self, size: int = PAGE_CACHE_SIZE, max_age_s: float = PAGE_MAX_AGE_S):
        self.size, self.max_age_s = size, max_age_s
        self._pages: OrderedDict[tuple[Any, ...], tuple[int, float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[Any, ...], version: int) -> str | None:
        with self._lock:
            kept = self._pages.get(key)
            if kept is None or kept[0] != version or time.monotonic() - kept[1] > self.max_age_s:
                self.misses += 1
                return None
            self._pages.move_to_end(key)
            self.hits += 1
            return kept[2]

    def put(self, key: tuple[Any, ...], version: int, text: str) -> None:
        with self._lock:
            self._pages[key] = (version, time.monotonic(), text)
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)


class Actions(Protocol):
    """What the pages may change, carried out by the service (store and broker together)."""

    def set_display_name(self, gym: str, athlete: str, name: str) -> None: ...

    def forget(self, gym: str, athlete: str) -> dict[str, int]: ...


#: The coach pages' login cookie. Browsers send a host's cookies to every port on it, so
#: with the display's name a login here would end the one on the wall display beside it.
COACH_COOKIE = "gym_coach"


def display_config(settings: WebSettings) -> DisplayConfig:
    """The display's config type, filled in for this server's login and Host checks."""
    return DisplayConfig(
        http_host=settings.host,
        http_port=settings.port,
        staff_file=settings.staff_file or None,
        allowed_hosts=settings.allowed_hosts,
        session_cookie=COACH_COOKIE,
    )


class HistoryWeb:
    """The pages' handlers around a store and the service's actions."""

    def __init__(
        self,
        store: HistoryStore,
        actions: Actions,
        settings: WebSettings,
        *,
        stats: Callable[[], dict[str, Any]] | None = None,
        auth: StaffAuth | None = None,
        renderer: Renderer | None = None,
    ):
        self.store, self.actions, self.settings = store, actions, settings
        self.render = renderer or Renderer(store, workers=0)
        self.pages = PageCache()
        self.stats = stats or (dict)
        self.dconfig = display_config(settings)
        if auth is None and settings.require_login:
            auth = StaffAuth(self.dconfig, StaffDirectory(settings.staff_file or None))
        self.auth = auth
        self.static = {
            route: ((STATIC_DIR / name).read_bytes(), ctype)
            for route, (name, ctype) in OWN_STATIC.items()
        }
        for route, (name, ctype) in SHARED_STATIC.items():
            path = DISPLAY_STATIC / name
            if path.exists():
                self.static[route] = (path.read_bytes(), ctype)

    def build(self) -> web.Application:
        app = web.Application(
            middlewares=[security_headers_on_errors, guard_middleware(self.dconfig)],
            client_max_size=MAX_BODY,
        )
        for route in self.static:
            app.router.add_get(route, self.static_file)
        staff = self.auth.staff_page if self.auth is not None else (lambda h: h)
        app.router.add_get("/", staff(self.home))
        app.router.add_get("/athletes", staff(self.athletes))
        app.router.add_get("/athletes.csv", staff(self.athletes_csv))
        # The .csv route first: the page's {athlete} would match "a1.csv" too.
        app.router.add_get("/athletes/{gym}/{athlete}.csv", staff(self.athlete_csv))
        app.router.add_get("/athletes/{gym}/{athlete}", staff(self.athlete))
        app.router.add_get("/athletes/{gym}/{athlete}/export.json", staff(self.export))
        app.router.add_post("/athletes/{gym}/{athlete}/card", self.set_card)
        app.router.add_post("/athletes/{gym}/{athlete}/forget", self.forget)
        app.router.add_get("/sessions/{gym}/{session}", staff(self.session))
        app.router.add_get("/alerts", staff(self.alerts))
        app.router.add_get("/alerts.csv", staff(self.alerts_csv))
        app.router.add_get("/healthz", self.healthz)
        if self.auth is not None:
            self.auth.add_routes(app)
        else:
            app.router.add_get("/api/me", self._anonymous_me)
        return app

    async def _anonymous_me(self, request: web.Request) -> web.Response:
        return web.json_response({"name": None, "accounts": False, "login": False})

    # ------------------------------------------------------------------ helpers

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A store action in a thread (the loop never waits on the database)."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def _ids(self, request: web.Request) -> tuple[str, str]:
        gym, athlete = request.match_info["gym"], request.match_info["athlete"]
        if not GYM.fullmatch(gym) or not ATHLETE_ID.fullmatch(athlete):
            raise web.HTTPNotFound(text="no such athlete")
        return gym, athlete

    @staticmethod
    def _int(request: web.Request, key: str, default: int, low: int, high: int) -> int:
        try:
            return max(low, min(high, int(request.query.get(key, default))))
        except ValueError:
            return default

    @staticmethod
    def _html(text: str) -> web.Response:
        return web.Response(
            text=text, content_type=HTML, charset="utf-8", headers={"Cache-Control": "no-store"}
        )

    @staticmethod
    def _csv(text: str, name: str) -> web.Response:
        return web.Response(
            text=text,
            content_type=CSV,
            charset="utf-8",
            headers={
                "Cache-Control": "no-store",
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )

    # ------------------------------------------------------------------ pages

    async def static_file(self, request: web.Request) -> web.Response:
        body, ctype = self.static[request.path]
        return web.Response(body=body, headers={"Content-Type": ctype, "Cache-Control": "no-cache"})

    async def home(self, request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/athletes")

    async def athletes(self, request: web.Request) -> web.Response:
        return self._html(await self.render.text(views.athletes_page, self.settings.display_url))

    async def athletes_csv(self, request: web.Request) -> web.Response:
        return self._csv(await self.render.text(views.athletes_csv), "athletes.csv")

    async def athlete(self, request: web.Request) -> web.Response:
        gym, athlete = self._ids(request)
        weeks = self._int(request, "weeks", 12, 1, 104)
        key = (gym, athlete, weeks)
        version = self.store.version(gym, athlete)  # before reading: a later change shows
        text = self.pages.get(key, version)
        if text is None:
            text = await self.render(
                views.athlete_page, gym, athlete, weeks, self.settings.display_url
            )
            if text is None:
                raise web.HTTPNotFound(text="no such athlete")
            self.pages.put(key, version, text)
        return self._html(text)

    async def athlete_csv(self, request: web.Request) -> web.Response:
        gym, athlete = self._ids(request)
        weeks = self._int(request, "weeks", 12, 1, 520)
        text = await self.render(views.athlete_csv, gym, athlete, weeks)
        if text is None:
            raise web.HTTPNotFound(text="no such athlete")
        return self._csv(text, f"{athlete}-sets.csv")

    async def export(self, request: web.Request) -> web.Response:
        gym, athlete = self._ids(request)
        return web.Response(
            text=await self.render.text(views.export_json, gym, athlete),
            content_type="application/json",
            headers={
                "Cache-Control": "no-store",
                "Content-Disposition": f'attachment; filename="{athlete}.json"',
            },
        )

    async def session(self, request: web.Request) -> web.Response:
        gym, session_id = request.match_info["gym"], request.match_info["session"]
        csv = session_id.endswith(".csv")
        if csv:
            session_id = session_id[:-4]
        if not GYM.fullmatch(gym) or not 0 < len(session_id) <= 128:
            raise web.HTTPNotFound(text="no such session")
        if csv:
            text = await self.render(views.session_csv, gym, session_id)
        else:
            text = await self.render(views.session_page, gym, session_id, self.settings.display_url)
        if text is None:
            raise web.HTTPNotFound(text="no such session")
        return self._csv(text, "session.csv") if csv else self._html(text)

    async def alerts(self, request: web.Request) -> web.Response:
        days = self._int(request, "days", 7, 1, 3650)
        return self._html(
            await self.render.text(views.alerts_page, days, self.settings.display_url)
        )

    async def alerts_csv(self, request: web.Request) -> web.Response:
        days = self._int(request, "days", 7, 1, 3650)
        return self._csv(await self.render.text(views.alerts_csv, days), "alerts.csv")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, **self.stats()}, headers={"Cache-Control": "no-store"}
        )

    # ------------------------------------------------------------------ actions

    def _staff(self, request: web.Request) -> str:
        if self.auth is None:
            return "staff"
        return self.auth.require_action(request).name

    async def set_card(self, request: web.Request) -> web.Response:
        who = self._staff(request)
        gym, athlete = self._ids(request)
        body = await read_json(request)
        name = body.get("display_name")
        if not isinstance(name, str) or not DISPLAY_NAME.fullmatch(name.strip()):
            return refuse(400, "a display name is 1-40 characters, without < or >", close=False)
        await self._run(self.actions.set_display_name, gym, athlete, name.strip())
        log.info("%s named athlete %s", who, athlete)
        return web.json_response({"ok": True, "display_name": name.strip()})

    async def forget(self, request: web.Request) -> web.Response:
        who = self._staff(request)
        gym, athlete = self._ids(request)
        body = await read_json(request)
        if body.get("confirm") != athlete:
            return refuse(400, "type the athlete id to confirm", close=False)
        counts = await self._run(self.actions.forget, gym, athlete)
        log.info(
            "%s made the store forget athlete %s (%d rows)", who, athlete, sum(counts.values())
        )
        return web.json_response({"ok": True, "deleted": counts})


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
