"""Engine creation for the metadata store: SQLite tuned for safety, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from ghaf.errors import ConfigError, SpineBypassError

GOVERNED = "ghaf_governed"
"""Execution option set only by the spine (and migrations) on connections that may write."""

_WRITE_STATEMENT = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|MERGE)\b", re.I)


def create_metadata_engine(url: str) -> Engine:
    """Create the engine for ``url`` with Ghaf's connection settings and write guard.

    SQLite gets WAL, foreign keys, a busy timeout, ``synchronous=FULL`` and
    ``BEGIN IMMEDIATE`` transactions, so that two processes writing at once
    queue instead of failing with "database is locked" mid-transaction. Its file is
    the owner's alone (0600), as are its journals.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 60}, pool_pre_ping=False)
        _tune_sqlite(engine)
        if parsed.database and parsed.database != ":memory:":
            _name_a_missing_home(engine, Path(parsed.database).parent)
    elif backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2"):
            raise ConfigError(
                f"metadata_url driver {parsed.drivername!r} is not supported",
                hint="use postgresql+psycopg://USER@HOST/DB",
            )
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    else:
        raise ConfigError(
            f"metadata_url scheme {parsed.drivername!r} is not supported",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
        )
    _guard_writes(engine)
    return engine


def _private_file(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask: 0644),
    or take group and other access off one created so; SQLite gives its WAL and
    shared-memory files the database file's mode. It holds token hashes and the audit
    trail."""
    if not path.parent.is_dir():
        return  # SQLite names the missing directory itself
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        try:
            mode = file.stat().st_mode & 0o777
            if mode & 0o077:
                file.chmod(mode & 0o700)
        except OSError:  # absent, or not ours to change: SQLite opens it as it is
            continue


def _name_a_missing_home(engine: Engine, directory: Path) -> None:
    """A database file whose directory does not exist (a typo in ``--home``, a home never
    made) is a one-line error naming ``ghaf init``, not SQLite's "unable to open database
    file" traceback; commands that never open the database (``ghaf gate check DIR``) are
    unaffected."""

    @event.listens_for(engine, "handle_error")
    def _missing(context: Any) -> None:
        if not directory.is_dir():
            raise ConfigError(
                f"no Ghaf home at {directory}",
                hint="run `ghaf init` to create it, or point --home (GHAF_HOME) at an "
                "existing home, or --url (GHAF_URL) at a server",
            ) from context.original_exception


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=60000",
            "PRAGMA synchronous=FULL",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front; readers stay deferred and never block.
        governed = conn.get_execution_options().get(GOVERNED)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if governed else "BEGIN")


def _guard_writes(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _check(
        conn: Any, _cursor: Any, statement: str, _params: Any, _ctx: Any, _many: bool
    ) -> None:
        if _WRITE_STATEMENT.match(statement) and not conn.get_execution_options().get(GOVERNED):
            raise SpineBypassError(
                "a metadata write ran outside a governed operation",
                hint="wrap the service function with @governed(...)",
            )
