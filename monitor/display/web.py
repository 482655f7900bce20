"""The display's web side: the page, its live stream and the staff's one action.

An aiohttp application (one event loop, no thread per connection):

* ``GET /`` the wall page, ``/login`` the staff login page, their scripts and
  styles (read once at start; the page never changes at run time);
* ``GET /api/state`` a JSON snapshot, ``GET /healthz`` liveness;
* ``GET /events`` Server-Sent Events: a snapshot, then coalesced updates that
  one broadcaster computes once per push for every open page; the number of
  streams is bounded in all and per client address, with a clear 503 beyond;
* ``POST /api/ack`` a logged-in staff member acknowledges an alert
  (``by`` = their name), and ``/api/login``, ``/api/logout``, ``/api/me``;
* ``GET /api/athletes`` (staff) the athletes the gym has named (their cards), and
  ``POST /api/session`` (staff) checks one in at a station, or checks out whoever is in.

Every request passes :func:`monitor.display.guards.guard_middleware` (Host
names, same-origin for anything that changes state, security headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from ..mqtt.messages import Ack, MessageError, SessionAction, SessionCommand
from .auth import StaffAuth, read_json
from .config import DisplayConfig
from .guards import guard_middleware, refuse, security_headers_on_errors
from .link import AckError, MqttLink
from .state import Board

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/login": ("login.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/login.js": ("login.js", "text/javascript; charset=utf-8"),
    "/staff.js": ("staff.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
MAX_BODY = 4096
STREAM_QUEUE = 32  # pushes a slow page may fall behind before it is dropped (it reconnects)


def sse(name: str, data: Any, retry_ms: int | None = None) -> bytes:
    text = json.dumps(data, separators=(",", ":"))  # one line: no "\n" inside
    head = f"retry: {retry_ms}\n" if retry_ms else ""
    return f"{head}event: {name}\ndata: {text}\n\n".encode()


class Streams:
    """Every open ``/events`` stream, and the one broadcaster that feeds them.

    On a change the broadcaster waits until ``push_interval_s`` after its last
    push, asks the board once for what changed, encodes it once, and queues
    the same bytes for every page. A page whose queue is full (a client that
    stopped reading) is dropped; its browser reconnects and gets a snapshot.
    """

    def __init__(self, board: Board, config: DisplayConfig):
        self.board = board
        self.config = config
        self._queues: dict[asyncio.Queue[bytes | None], str] = {}
        self._per_client: Counter[str] = Counter()
        self._dirty = asyncio.Event()
        self._seq = board.seq
        self._task: asyncio.Task[None] | None = None
        self.closing = False
        self.refused = 0

    def __len__(self) -> int:
        return len(self._queues)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._broadcast(), name="broadcast")

    def changed(self) -> None:
        self._dirty.set()

    async def close(self) -> None:
        self.closing = True
        for queue in self._queues:
            queue.put_nowait(None) if not queue.full() else None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _broadcast(self) -> None:
        last_push = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty.wait()
            delay = last_push + self.config.push_interval_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._dirty.clear()
            if self.board.seq == self._seq:
                continue
            update = self.board.changes_since(self._seq)
            self._seq = update["seq"]
            last_push = loop.time()
            if not self._queues:
                continue
            data = sse("update", update)
            for queue in list(self._queues):
                try:
                    queue.put_nowait(data)
                except asyncio.QueueFull:
                    self._drop(queue)

    def _drop(self, queue: asyncio.Queue[bytes | None]) -> None:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)
        self._leave(queue)

    def _leave(self, queue: asyncio.Queue[bytes | None]) -> None:
        client = self._queues.pop(queue, None)
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]

    async def serve(self, request: web.Request) -> web.StreamResponse:
        client = request.remote or "?"
        if self.closing:
            return refuse(503, "the display is shutting down")
        if (
            len(self._queues) >= self.config.max_streams
            or self._per_client[client] >= self.config.max_streams_per_client
        ):
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.warning(
                    "refused a live stream from %s: %d open (limit %d, %d per client); "
                    "%d refused so far",
                    client,
                    len(self._queues),
                    self.config.max_streams,
                    self.config.max_streams_per_client,
                    self.refused,
                )
            busy = refuse(503, "too many live pages are open; retrying shortly")
            busy.headers["Retry-After"] = "10"
            return busy
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # should a proxy sit in front
            }
        )
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(STREAM_QUEUE)
        # Snapshot and registration with no await between: the next broadcast
        # covers everything after this snapshot.
        snapshot = sse("snapshot", self.board.snapshot(), retry_ms=1000)
        self._queues[queue] = client
        self._per_client[client] += 1
        try:
            await response.prepare(request)
            await response.write(snapshot)
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), self.config.keepalive_s)
                except TimeoutError:
                    # An event, not a comment: the page's watchdog sees it and knows
                    # the stream is alive; writing also detects a client that left.
                    data = sse("ping", {"now": time.time()})
                if data is None:
                    break
                await response.write(data)
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass  # the page went away (or we are stopping); EventSource comes back
        finally:
            self._leave(queue)
        return response


class DisplayApp:
    """The application's handlers, around the board, the broker link and the logins."""

    def __init__(
        self, config: DisplayConfig, board: Board, link: MqttLink, auth: StaffAuth, streams: Streams
    ):
        self.config, self.board, self.link, self.auth, self.streams = (
            config,
            board,
            link,
            auth,
            streams,
        )
        self.static = {
            route: ((STATIC_DIR / name).read_bytes(), ctype)
            for route, (name, ctype) in STATIC_FILES.items()
        }

    def build(self) -> web.Application:
        app = web.Application(
            middlewares=[security_headers_on_errors, guard_middleware(self.config)],
            client_max_size=MAX_BODY,
        )
        for route in self.static:
            app.router.add_get(route, self.static_file)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/events", self.streams.serve)
        app.router.add_post("/api/ack", self.ack)
        app.router.add_get("/api/athletes", self.athletes)
        app.router.add_post("/api/session", self.session)
        self.auth.add_routes(app)
        return app

    async def static_file(self, request: web.Request) -> web.Response:
        body, ctype = self.static[request.path]
        return web.Response(body=body, headers={"Content-Type": ctype, "Cache-Control": "no-cache"})

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.board.snapshot(),
            headers={"Cache-Control": "no-store"},
            dumps=lambda o: json.dumps(o, separators=(",", ":")),
        )

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "link_up": self.board.link_up,
                "streams": len(self.streams),
                "streams_refused": self.streams.refused,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def ack(self, request: web.Request) -> web.Response:
        session = self.auth.require_action(request)
        body = await read_json(request)
        station: Any = body.get("station")
        alert_id: Any = body.get("id")
        request_id = secrets.token_hex(8)
        try:
            # The command as the station reads it: a bad id is refused here, not there.
            command = Ack(id=alert_id, by=session.name, request_id=request_id)
        except MessageError:
            command = None
        if command is None or not (isinstance(station, str) and 0 < len(station) <= 64):
            return refuse(400, 'need {"station": str, "id": str}')
        if not self.board.is_active(station, command.id):
            return refuse(404, "no such active alert on that station", close=False)
        try:
            await self.link.send(station, command)
        except AckError as err:
            return refuse(err.status, str(err), close=False)
        self.board.note_ack(station, command.id, session.name, request_id)
        self.streams.changed()
        log.info(
            "%s acknowledged %s on %s (from %s)", session.name, alert_id, station, request.remote
        )
        return web.json_response(
            {"ok": True, "state": "waiting", "by": session.name, "request_id": request_id},
            status=202,
        )

    async def athletes(self, request: web.Request) -> web.Response:
        """The named athletes, for the check-in picker: staff only (names are not for the wall)."""
        if self.auth.current(request) is None:
            return refuse(401, "log in as staff first", close=False)
        return web.json_response(
            {"athletes": self.board.athletes()}, headers={"Cache-Control": "no-store"}
        )

    async def session(self, request: web.Request) -> web.Response:
        """``{"station", "athlete"}``: check the athlete in there (whoever was in checks out);
        ``{"station", "action": "checkout"}``: check out whoever is in."""
        session = self.auth.require_action(request)
        body = await read_json(request)
        station, athlete = body.get("station"), body.get("athlete")
        action = body.get("action", "start")
        request_id = secrets.token_hex(8)
        try:
            command = SessionCommand(action=action, athlete=athlete, request_id=request_id)
        except MessageError:
            command = None
        if not (
            command is not None
            and isinstance(station, str)
            and 0 < len(station) <= 64
            and command.action in (SessionAction.START, SessionAction.CHECKOUT)
            and (athlete is not None) == command.starts
        ):
            return refuse(
                400,
                'need {"station": str, "athlete": id} or {"station": str, "action": "checkout"}',
            )
        if not self.board.has_station(station):
            return refuse(404, "no such station on the board", close=False)
        if athlete is not None and not self.board.knows_athlete(athlete):
            return refuse(404, "no athlete with that id has a name here", close=False)
        try:
            await self.link.send(station, command)
        except AckError as err:
            return refuse(err.status, str(err), close=False)
        log.info(
            "%s %s at %s (from %s)",
            session.name,
            f"checked {athlete} in" if athlete else "checked out whoever was in",
            station,
            request.remote,
        )
        return web.json_response(
            {"ok": True, "state": "sent", "request_id": request_id}, status=202
        )
