"""Alembic's entry point: migrate the connection the store hands over.

The store runs Alembic in process (``HistoryStore.migrate``) and passes its own
connection in ``config.attributes["connection"]``, so there is no alembic.ini
and no second place that knows the database URL.
"""

from __future__ import annotations

from alembic import context

from monitor.history.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things: batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
