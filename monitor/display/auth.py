"""Staff logins for the display: sessions, CSRF tokens and login rate limits.

:class:`StaffAuth` gives an aiohttp application three routes and one check::

    auth = StaffAuth(config, StaffDirectory(config.staff_file))
    auth.add_routes(app)            # POST /api/login, POST /api/logout, GET /api/me
    ...
    async def ack(request):
        who = auth.require_action(request)    # 401 / 403 unless logged in with the CSRF token
        ... who.name ...

    @auth.staff_page                 # a GET page for staff only (the coach's pages)
    async def history(request): ...  # -> 303 to /login?next=/history when logged out

How it holds together:

* a login checks the name and PIN against :class:`~monitor.display.staff.StaffDirectory`
  (argon2, in a small worker pool so the event loop never waits on it), with
  failures counted per client address and per name: past the limit the answer
  is 429 with ``Retry-After`` and no hash is even computed;
* a session is a random token in a cookie (``HttpOnly``, ``SameSite=Strict``,
  ``Secure`` when served over TLS) named by ``session_cookie`` in the config
  (``gym_staff`` on the wall display; browsers send cookies to every port of
  a host, so another server using this login on the same host, such as the
  coach's pages, must name its own), kept only in memory, ending after
  ``session_idle_s`` without use or ``session_max_s`` in all, at logout, or
  when the account is removed from the staff file;
* every state-changing request must carry the session's CSRF token in an
  ``X-CSRF-Token`` header (pages get it from ``GET /api/me``); the
  same-origin checks in :mod:`monitor.display.guards` come on top.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .config import DisplayConfig
from .guards import refuse
from .staff import MAX_SECRET, StaffDirectory

log = logging.getLogger(__name__)

CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 1000
MAX_PENDING_LOGINS = 8  # argon2 checks waiting for a worker; beyond this, "busy"

Clock = Callable[[], float]


@dataclass
class StaffSession:
    token: str
    name: str
    csrf: str
    started: float
    last_used: float


class SessionStore:
    """Sessions in memory: a restart logs everyone out, a logout really ends one."""

    def __init__(self, idle_s: float, max_s: float, clock: Clock = time.monotonic):
        self.idle_s, self.max_s, self.clock = idle_s, max_s, clock
        self._sessions: OrderedDict[str, StaffSession] = OrderedDict()

    def create(self, name: str) -> StaffSession:
        now = self.clock()
        session = StaffSession(secrets.token_urlsafe(32), name, secrets.token_urlsafe(32), now, now)
        self._sessions[session.token] = session
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)  # the least recently used goes
        return session

    def get(self, token: str | None) -> StaffSession | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_used > self.idle_s or now - session.started > self.max_s:
            del self._sessions[token]
            return None
        session.last_used = now
        self._sessions.move_to_end(token)
        return session

    def expires_in(self, session: StaffSession) -> float:
        now = self.clock()
        return max(0.0, min(session.last_used + self.idle_s, session.started + self.max_s) - now)

    def drop(self, token: str) -> None:
        self._sessions.pop(token, None)

    def __len__(self) -> int:
        return len(self._sessions)


class FailureLimiter:
    """At most ``limit`` failures per key in a sliding ``window_s``; bounded memory."""

    def __init__(
        self, limit: int, window_s: float, clock: Clock = time.monotonic, max_keys: int = 4096
    ):
        self.limit, self.window_s, self.clock, self.max_keys = limit, window_s, clock, max_keys
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float] | None:
        times = self._fails.get(key)
        if times is None:
            return None
        cutoff = self.clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._fails[key]
            return None
        return times

    def wait_s(self, key: str) -> float:
        """0 if ``key`` may try now, else the seconds until it may."""
        times = self._recent(key)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(1.0, times[0] + self.window_s - self.clock())

    def fail(self, key: str) -> None:
        times = self._recent(key) or deque(maxlen=self.limit)
        times.append(self.clock())
        self._fails[key] = times
        self._fails.move_to_end(key)
        while len(self._fails) > self.max_keys:
            self._fails.popitem(last=False)

    def clear(self, key: str) -> None:
        self._fails.pop(key, None)


class StaffAuth:
    """Logins, sessions and the checks that state-changing requests need."""

    def __init__(
        self, config: DisplayConfig, directory: StaffDirectory, *, clock: Clock = time.monotonic
    ):
        self.config = config
        self.directory = directory
        self.cookie = config.session_cookie
        self.sessions = SessionStore(config.session_idle_s, config.session_max_s, clock)
        self.by_client = FailureLimiter(
            config.login_failures_per_client, config.login_window_s, clock
        )
        self.by_name = FailureLimiter(config.login_failures_per_name, config.login_window_s, clock)
        # argon2 is slow on purpose: two workers, so logins never starve the loop or the Pi.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="display-login")
        self._pending = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/login", self.login)
        app.router.add_post("/api/logout", self.logout)
        app.router.add_get("/api/me", self.me)

    # ------------------------------------------------------------ who is asking

    def current(self, request: web.Request) -> StaffSession | None:
        session = self.sessions.get(request.cookies.get(self.cookie))
        if session is not None and not self.directory.exists(session.name):
            log.info("%s's account is gone: session ended", session.name)
            self.sessions.drop(session.token)
            return None
        return session

    def require_action(self, request: web.Request) -> StaffSession:
        """The session behind a state-changing request, or an HTTP error that says why."""
        session = self.current(request)
        if session is None:
            raise _http(web.HTTPUnauthorized, "log in as staff first")
        token = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(token.encode(), session.csrf.encode()):
            raise _http(web.HTTPForbidden, "missing or wrong CSRF token; reload the page")
        return session

    def staff_page(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        """Decorate a GET handler: staff only, others are sent to the login page."""

        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            if self.current(request) is None:
                raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
            return await handler(request)

        return wrapper

    def _secure(self, request: web.Request) -> bool:
        mode = self.config.secure_cookies
        return mode == "always" or (mode == "auto" and request.secure)

    # ------------------------------------------------------------ routes

    async def me(self, request: web.Request) -> web.Response:
        session = self.current(request)
        if session is None:
            return web.json_response(
                {"name": None, "accounts": self.directory.count > 0},
                headers={"Cache-Control": "no-store"},
            )
        return web.json_response(
            {
                "name": session.name,
                "csrf": session.csrf,
                "expires_in_s": round(self.sessions.expires_in(session)),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def login(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        name, secret = body.get("name"), body.get("pin")
        if not (
            isinstance(name, str)
            and isinstance(secret, str)
            and 0 < len(name) <= 64
            and 0 < len(secret) <= MAX_SECRET
        ):
            return refuse(400, 'need {"name": str, "pin": str}')
        client = request.remote or "?"
        name_key = name.strip().casefold()
        wait = max(self.by_client.wait_s(client), self.by_name.wait_s(name_key))
        if wait:
            log.warning("login for %r from %s refused: too many failures", name[:64], client)
            response = refuse(429, f"too many failed logins; try again in {wait:.0f} s")
            response.headers["Retry-After"] = str(round(wait))
            return response
        if self._pending >= MAX_PENDING_LOGINS:
            return refuse(503, "busy checking other logins; try again in a moment")
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            account = await loop.run_in_executor(self._pool, self.directory.verify, name, secret)
        finally:
            self._pending -= 1
        if account is None:
            self.by_client.fail(client)
            self.by_name.fail(name_key)
            log.warning("failed login for %r from %s", name[:64], client)
            if self.directory.count == 0:
                return refuse(
                    401, "no staff accounts yet: add one with 'gym-monitor staff add NAME'"
                )
            return refuse(401, "wrong name or PIN")
        self.by_client.clear(client)
        self.by_name.clear(name_key)
        old = request.cookies.get(self.cookie)
        if old:
            self.sessions.drop(old)  # a login never continues someone else's session
        session = self.sessions.create(account)
        log.info("%s logged in from %s", account, client)
        response = web.json_response(
            {
                "ok": True,
                "name": account,
                "csrf": session.csrf,
                "expires_in_s": round(self.config.session_idle_s),
            }
        )
        response.set_cookie(
            self.cookie,
            session.token,
            httponly=True,
            samesite="Strict",
            path="/",
            secure=self._secure(request),
            max_age=round(self.config.session_max_s),
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def logout(self, request: web.Request) -> web.Response:
        session = self.require_action(request)
        self.sessions.drop(session.token)
        log.info("%s logged out", session.name)
        response = web.json_response({"ok": True})
        response.del_cookie(self.cookie, path="/")
        return response


def _http(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"ok": False, "error": message}), content_type="application/json")


async def read_json(request: web.Request) -> dict[str, Any]:
    """A small JSON object from the body, or an HTTP 400/408/413 (the connection then closes).

    The application's ``client_max_size`` bounds the body; a client that
    trickles it gets five seconds.
    """
    try:
        raw = await asyncio.wait_for(request.read(), timeout=5.0)
    except TimeoutError:
        raise _http(web.HTTPRequestTimeout, "body too slow") from None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _http(web.HTTPBadRequest, "body is not JSON") from None
    if not isinstance(body, dict):
        raise _http(web.HTTPBadRequest, "body must be a JSON object")
    return body
