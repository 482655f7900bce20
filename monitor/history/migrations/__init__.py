"""Alembic migrations of the history store (run by :meth:`HistoryStore.migrate`)."""
