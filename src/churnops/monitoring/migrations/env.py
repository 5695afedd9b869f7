"""Alembic's environment: migrate the connection the store hands over, inside its transaction.

Run only programmatically (``churnops.monitoring.store``), which passes an open connection in
``config.attributes["connection"]`` after taking the store's creation lock.
"""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "churnops_store_version"

connection = context.config.attributes["connection"]
# render_as_batch: later revisions that alter a table work on SQLite too (copy and swap).
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
