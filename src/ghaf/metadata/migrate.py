"""Schema migrations: Alembic, one branch per concern, all applied with ``upgrade heads``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from ghaf.metadata.engine import GOVERNED

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at Ghaf's migration scripts (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    return config


def upgrade(engine: Engine) -> None:
    """Apply every pending migration on every branch."""
    config = alembic_config()
    with engine.connect().execution_options(**{GOVERNED: True}) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
        connection.commit()


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
