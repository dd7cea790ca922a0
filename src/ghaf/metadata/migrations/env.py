"""Alembic environment: runs on the connection Ghaf hands it (online mode only)."""

from __future__ import annotations

from alembic import context

from ghaf.metadata.tables import load_all_tables

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=load_all_tables().metadata,
    render_as_batch=True,  # SQLite needs table rebuilds for ALTER
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
