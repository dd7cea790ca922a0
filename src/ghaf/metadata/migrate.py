"""Schema migrations: Alembic, one branch per concern, all applied with ``upgrade heads``.

A database with no tables at all is built in one transaction from the ORM's metadata
and stamped at the heads, as Alembic's cookbook advises for new databases ("building an
up to date database from scratch"): replaying every migration costs a commit each and
most of ``ghaf init``. ``tests/integration/test_schema.py`` holds both ways to the same
schema and the same rows.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, insert, inspect

from ghaf.metadata.engine import GOVERNED

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at Ghaf's migration scripts (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    return config


def upgrade(engine: Engine, *, replay: bool = False) -> None:
    """Bring the schema to the heads: build a database that has no tables from the ORM in
    one transaction, or apply every pending migration on every branch (always, with
    ``replay``)."""
    if not replay and _create_if_empty(engine):
        return
    config = alembic_config()
    with engine.connect().execution_options(**{GOVERNED: True}) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
        connection.commit()


def _create_if_empty(engine: Engine) -> bool:
    """Create every table, the rows the migrations seed, and the heads' stamp, when the
    database holds no table; False (nothing done) otherwise. The emptiness check runs
    under the write lock (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock), so two
    processes initialising one database build it once."""
    from ghaf.metadata.tables import load_all_tables

    governed = engine.connect().execution_options(**{GOVERNED: True})
    with governed as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242000001)")
        if inspect(connection).get_table_names():
            return False
        metadata = load_all_tables().metadata
        metadata.create_all(connection, checkfirst=False)
        _seed(connection, metadata)
        script = ScriptDirectory.from_config(alembic_config())
        MigrationContext.configure(connection).stamp(script, "heads")
    return True


def _seed(connection: Connection, metadata: MetaData) -> None:
    """The rows the migrations insert (``foundation_0001``: the audit chain's genesis head,
    which appends lock); the schema test compares every table's rows with a replay."""
    head = metadata.tables["audit_head"]
    connection.execute(insert(head), [{"id": 1, "seq": 0, "record_hash": "0" * 64}])


def pending_heads(engine: Engine) -> set[str]:
    """Migration revisions the database has not applied yet (empty when up to date).

    Alembic stores only the tips of the applied graph (a branch that depends on
    another hides it), so "applied" is everything below the stored heads.
    """
    script = ScriptDirectory.from_config(alembic_config())
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        connection.rollback()
    applied = {rev.revision for rev in script.iterate_revisions(current, "base") if rev}
    return {rev.revision for rev in script.walk_revisions()} - applied
