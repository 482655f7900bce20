"""The gym's memory: session history on a real database, and the coach's pages.

A service beside the wall display (``gym-monitor history``, its own systemd
unit) subscribes to the stations with a persistent MQTT session and stores
session records, sets, holds, alerts with their acknowledgements, hydration,
check-ins and a per-minute tremor trace; it owns the athletes' profiles and
the display names on the wall, and serves the coach's pages.

* :mod:`.schema` and ``migrations/`` -- the tables (SQLAlchemy Core, Alembic);
* :mod:`.store` -- idempotent writes, the pages' queries, retention, forget, export;
* :mod:`.incoming` -- what is read off the wire, checked;
* :mod:`.ingest` -- the MQTT subscriber, manual acknowledgements after commit;
* :mod:`.web` and :mod:`.charts` -- the coach's pages, server-rendered SVG;
* :mod:`.service` -- all of it together, the retention job, the command line.

SQLite in the state directory by default; PostgreSQL by URL for a chain.
"""
