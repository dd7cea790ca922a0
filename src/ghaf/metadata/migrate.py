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
    """Heads of the migration scripts that the database has not reached yet."""
    script = ScriptDirectory.from_config(alembic_config())
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
        connection.rollback()
    return set(script.get_heads()) - current
