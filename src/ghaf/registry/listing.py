"""The registry's model list, apart from the service: ``ghaf models list`` runs at every
shell prompt, and needs two columns of two tables, not lineage, cards, seals or signing.

The list is one SQL query (:data:`LISTING_SQL`, standard SQL that SQLite and PostgreSQL
both run) over the columns in :data:`LISTING_COLUMNS`, which a test keeps the ORM
tables' own (:mod:`ghaf.registry.tables`). A service (the server, the UI) runs it on the
platform's engine. The CLI on a home runs it without opening a
:class:`~ghaf.platform.Platform` (audit, RBAC policy, stores) or importing SQLAlchemy's
ORM: on a home's SQLite file through the standard library's ``sqlite3`` (query-only), and
on any other store, or whenever that fast path cannot answer, through Ghaf's own engine
(:func:`~ghaf.metadata.engine.create_metadata_engine`: its missing-home error and write
guard), so what goes wrong still reads as it always did. SQLAlchemy's import alone is a
third of a whole ``ghaf models list`` process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import Engine

    from ghaf.platform import Platform

LISTING_COLUMNS: dict[str, tuple[str, ...]] = {
    "registered_models": ("id", "name", "project"),
    "model_versions": ("model_id", "version"),
}
"""The only columns :data:`LISTING_SQL` reads, by table."""

LISTING_SQL = (
    "SELECT m.name, MAX(v.version), m.project"
    " FROM registered_models AS m JOIN model_versions AS v ON v.model_id = m.id"
    " GROUP BY m.id, m.name, m.project"
    " ORDER BY m.name"
)
"""Every model with at least one version: name, latest version, project; by name."""

_SQLITE_PREFIX = "sqlite:///"
_BUSY_TIMEOUT_S = 60.0
"""As the metadata engine's: a reader waits for a checkpoint rather than fail."""


def _rows(rows: Iterable[Any]) -> list[tuple[str, int, str]]:
    return [(str(name), int(latest), str(project)) for name, latest, project in rows]


def read_models(engine: Engine) -> list[tuple[str, int, str]]:
    """:data:`LISTING_SQL` on ``engine``: a read (deferred ``BEGIN``, rolled back) under
    the engine's write guard."""
    from sqlalchemy import text

    with engine.connect() as connection:
        return _rows(connection.execute(text(LISTING_SQL)).all())


def list_models(platform: Platform) -> list[tuple[str, int, str]]:
    """Every registered model: (name, latest version, project)."""
    return read_models(platform.engine)


def list_models_at(metadata_url: str) -> list[tuple[str, int, str]]:
    """:func:`list_models` on the metadata store at ``metadata_url``, without a platform.

    Raises:
        ConfigError: no home where a SQLite URL points (as every command says it).
    """
    found = _read_sqlite_file(metadata_url)
    if found is not None:
        return found
    from ghaf.metadata.engine import create_metadata_engine

    engine = create_metadata_engine(metadata_url)
    try:
        return read_models(engine)
    finally:
        engine.dispose()


def _read_sqlite_file(metadata_url: str) -> list[tuple[str, int, str]] | None:
    """The list read straight from an existing SQLite file, or None to take the engine's
    way: another database, a URL with options or escapes, a file not there (the engine
    names a missing home), a file others may read (the engine makes it private), or any
    SQLite error (the engine raises it as every command does)."""
    if not metadata_url.startswith(_SQLITE_PREFIX):
        return None
    database = metadata_url.removeprefix(_SQLITE_PREFIX)
    if not database or database == ":memory:" or "?" in database or "%" in database:
        return None
    path = Path(database)
    if not path.is_file() or _shared_with_others(path):
        return None
    import sqlite3

    try:
        connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return None
    try:
        connection.execute("PRAGMA query_only = ON")  # this connection cannot write
        return _rows(connection.execute(LISTING_SQL).fetchall())
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _shared_with_others(path: Path) -> bool:
    """Whether the database or its journals give group or others any access: the engine
    takes it off when it opens the file, so that case goes the engine's way."""
    for file in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        try:
            if file.stat().st_mode & 0o077:
                return True
        except OSError:  # absent
            continue
    return False
