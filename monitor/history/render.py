"""The coach's pages built away from the ingest: reads and HTML in a worker process.

The ingest (paho's network thread and the writer) and a page are both Python.
In one process they take turns at the interpreter lock: a year of an
athlete's history is ~50 ms of row handling and SVG text, during which the
writer waits to commit and acknowledge, and a busy floor in turn makes the
page wait. A render worker is a process of its own with its own connection
to the store, so the two only share the machine's cores::

    renderer = Renderer(store, workers=1)       # 0: in this process's threads
    html = await renderer(views.athlete_page, "leeds", "a3k7", 12, "/")
    renderer.close()

Each view is a module-level function of the store and plain arguments,
returning text (or None for "no such thing"), so a worker runs it with its own
store and sends back only the text. A worker that dies (killed, out of
memory) is replaced and the view run again once; a pool that cannot start at
all (a sandbox without POSIX semaphores) leaves the views in threads, logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from . import pages
from .store import HistoryStore

log = logging.getLogger(__name__)

#: The store of this worker process (set by :func:`_open_store`).
_STORE: HistoryStore | None = None


# --------------------------------------------------------------------------- the views


def athletes_page(store: HistoryStore, display_url: str) -> str:
    return pages.athletes_page(store.athletes(), display_url=display_url)


def athletes_csv(store: HistoryStore) -> str:
    return pages.athletes_csv(store.athletes())


def _athlete(store: HistoryStore, gym: str, athlete: str, weeks: int) -> dict[str, Any] | None:
    until = time.time()
    since = until - weeks * pages.WEEK
    history = store.athlete_history(gym, athlete, since)
    profile = store.profile(gym, athlete)
    if not history["sessions"] and profile is None and not store.knows(gym, athlete):
        return None
    return {
        "history": history,
        "profile": profile,
        "name": store.card(gym, athlete),
        "since": since,
        "until": until,
    }


def athlete_page(
    store: HistoryStore, gym: str, athlete: str, weeks: int, display_url: str
) -> str | None:
    data = _athlete(store, gym, athlete, weeks)
    if data is None:
        return None
    return pages.athlete_page(
        gym,
        athlete,
        data["name"],
        data["profile"],
        data["history"],
        since=data["since"],
        until=data["until"],
        weeks=weeks,
        display_url=display_url,
    )


def athlete_csv(store: HistoryStore, gym: str, athlete: str, weeks: int) -> str | None:
    data = _athlete(store, gym, athlete, weeks)
    return None if data is None else pages.athlete_csv(data["history"])


def export_json(store: HistoryStore, gym: str, athlete: str) -> str:
    return json.dumps(store.export(gym, athlete), indent=1, default=str)


def session_page(store: HistoryStore, gym: str, session_id: str, display_url: str) -> str | None:
    data = store.session(gym, session_id)
    if data is None:
        return None
    athlete = data["session"]["athlete"]
    name = store.card(gym, athlete) if athlete else None
    return pages.session_page(gym, data, name, display_url=display_url)


def session_csv(store: HistoryStore, gym: str, session_id: str) -> str | None:
    data = store.session(gym, session_id)
    return None if data is None else pages.session_csv(data)


def _alerts(store: HistoryStore, days: int) -> list[dict[str, Any]]:
    return store.alert_log(since_ts=time.time() - days * 86400, limit=2000)


def alerts_page(store: HistoryStore, days: int, display_url: str) -> str:
    alerts = _alerts(store, days)
    return pages.alerts_page(alerts, store.cards(), days=days, display_url=display_url)


def alerts_csv(store: HistoryStore, days: int) -> str:
    return pages.alerts_csv(_alerts(store, days))


VIEWS: dict[str, Callable[..., str | None]] = {
    f.__name__: f
    for f in (
        athletes_page,
        athletes_csv,
        athlete_page,
        athlete_csv,
        export_json,
        session_page,
        session_csv,
        alerts_page,
        alerts_csv,
    )
}


# --------------------------------------------------------------------------- the worker


def _open_store(url: str, gym: str) -> None:
    global _STORE
    _follow_parent()
    _STORE = HistoryStore(url, gym=gym)


def _follow_parent(poll_s: float = 1.0) -> None:
    """End this worker soon after the service that started it ends, however it ended.

    A service that is SIGKILLed, or a demo that exits without closing its pool, would
    otherwise leave its workers running, holding the terminal or the pipes its caller
    reads to the end. (``PR_SET_PDEATHSIG`` would follow the starting *thread*, and the
    pool is started from an executor thread, so the parent is watched instead.)
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _run(name: str, args: tuple[Any, ...]) -> str | None:
    if _STORE is None:  # pragma: no cover -- the initializer always runs first
        raise RuntimeError("render worker without a store")
    return VIEWS[name](_STORE, *args)


def _ready() -> bool:
    return _STORE is not None


class Renderer:
    """Runs views in ``workers`` processes (0: in the event loop's default threads)."""

    def __init__(self, store: HistoryStore, workers: int = 1):
        self.store = store
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor | None:
        pool: ProcessPoolExecutor | None = None
        try:
            pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_open_store,
                initargs=(self.store.url, self.store.gym),
            )
            pool.submit(_ready).result(timeout=60)  # started and importable, before any page
        except Exception as err:
            log.warning("pages rendered in the service's own threads: no worker process (%s)", err)
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            return None
        return pool

    @property
    def in_process(self) -> bool:
        return self._pool is None

    async def __call__(self, view: Callable[..., str | None], *args: Any) -> str | None:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            pool = self._pool
            if pool is None:
                return await loop.run_in_executor(None, view, self.store, *args)
            try:
                return await loop.run_in_executor(pool, _run, view.__name__, args)
            except BrokenProcessPool:
                if attempt == 2:
                    raise
                log.error("a render worker died; starting another")
                if self._pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = await loop.run_in_executor(None, self._start)
        raise AssertionError("unreachable")  # pragma: no cover

    async def text(self, view: Callable[..., str], *args: Any) -> str:
        """A view that always has something to show (a list, a log, an export)."""
        out = await self(view, *args)
        if out is None:
            raise RuntimeError(f"view {view.__name__} returned nothing")
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
