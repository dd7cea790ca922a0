"""The process's one in-memory DuckDB database for contract work, handed out as cursors.

Opening a DuckDB database costs about 12 ms (19 ms the first time in a process) and
closing one after a large scan about 9 ms; a cursor on an open database costs
microseconds and is a connection of its own, safe to use from its own thread. Pattern
validation and every contract run therefore share one database.

Its settings are global to the database, so they are fixed here, once, for every user:

- no Parquet prefetching and no external file cache: a contract reads a local file
  once, and both only added memory to fault in (peak RSS of the 10M-row contract 790 ->
  530 MiB, ~9% faster); the file cache could also serve stale bytes for a path that was
  rewritten since (staged files are);
- no statistics propagation and no filter pushdown: both consult the Parquet footer's
  bounds, which for floating point leave NaN out, so ``max`` would miss a NaN and a
  pushed-down ``WHERE x > 10`` would prune the row groups holding NaN rows that the
  aggregate counted as failing (samples and quarantine would miss them).

A forked child gets a database of its own: DuckDB's threads do not survive ``fork``.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

_SETTINGS = (  # GLOBAL: a plain SET of the Parquet option would hold for one cursor only
    "SET GLOBAL disable_parquet_prefetching = true",
    "SET GLOBAL enable_external_file_cache = false",
    "SET GLOBAL disabled_optimizers = 'filter_pushdown,statistics_propagation'",
)
_lock = threading.Lock()
_opened: dict[int, duckdb.DuckDBPyConnection] = {}
"""The database by the process id that opened it. One inherited over ``fork`` is kept,
unused: closing it in the child would join threads that only the parent has."""


def cursor() -> duckdb.DuckDBPyConnection:
    """A new connection to the shared database, with the progress bar off; close it after."""
    with _lock:
        database = _opened.get(os.getpid())
        if database is None:
            database = _opened[os.getpid()] = _open()
        connection = database.cursor()
    connection.execute("SET enable_progress_bar = false")
    return connection


def _open() -> duckdb.DuckDBPyConnection:
    import duckdb  # on use: importing this module must not load DuckDB

    database = duckdb.connect()
    for setting in _SETTINGS:
        database.execute(setting)
    return database
