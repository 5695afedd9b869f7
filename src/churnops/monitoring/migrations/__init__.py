"""Alembic migrations of the prediction store (run by ``churnops.monitoring.store.open_store``)."""
