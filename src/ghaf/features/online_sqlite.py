"""SQLite online store: one table per view, one row per entity, primary-key lookups."""

# SQL here is built from identifiers validated by check_name and quoted, never from values.
# ruff: noqa: S608

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import orjson
import pyarrow as pa

from ghaf.errors import BackendUnavailableError, ConfigError
from ghaf.features.base import Row, ViewLayout, stored_form
from ghaf.features.regions import check_store_region

_SQL_TYPES = {
    "float64": "REAL",
    "float32": "REAL",
    "int64": "INTEGER",
    "int32": "INTEGER",
    "bool": "INTEGER",
    "string": "TEXT",
    "timestamp": "INTEGER",
}
_SEP = "\x1f"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=512)
def _keys_cte(count: int) -> str:
    """``WITH k(i, key) AS (VALUES (0, ?), (1, ?), ...)``: the request's keys, numbered."""
    return "WITH k(i, key) AS (VALUES " + ",".join(f"({i},?)" for i in range(count)) + ") "


def _table(view: str) -> str:
    return _q(f"fv_{view}")


def composite_key(values: Sequence[Any]) -> str:
    return _SEP.join(str(v) for v in values)


class SqliteOnlineStore:
    """``sqlite:///PATH[?cache_seconds=N]``: the embedded default online store.

    ``cache_seconds`` > 0 keeps rows read in an in-process cache for that long.
    ``region`` is where its data is declared to live: the first write records it in
    the store, and every later open with another region is refused (a file cannot say
    where it is, but it can remember what its first writer declared).
    """

    def __init__(self, url: str, *, region: str | None = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "sqlite" or not parsed.path:
            raise ConfigError(f"online store URL {url!r} is not sqlite:///PATH")
        self.url = url
        self.path = Path(unquote(parsed.path))
        options = parse_qs(parsed.query)
        self.cache_seconds = float(options.get("cache_seconds", ["0"])[0])
        self._cache: dict[tuple[Any, Any], tuple[float, Row | None]] = {}
        self._local = threading.local()
        self._ready: set[ViewLayout] = set()
        self._select: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ghaf_online_meta "
                "(view TEXT PRIMARY KEY, watermark INTEGER NOT NULL, layout TEXT NOT NULL)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ghaf_online_info "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            recorded = self._recorded_region(conn)
        try:
            check_store_region(self.url, recorded, region)
        except ConfigError:
            self.close()
            raise
        self.region: str | None = recorded or region

    @staticmethod
    def _recorded_region(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT value FROM ghaf_online_info WHERE key = 'region'").fetchone()
        return None if row is None else str(row[0])

    def _record_region(self, conn: sqlite3.Connection) -> None:
        """Record the declared region with the first data (in the write's transaction)."""
        if self.region is None:
            return
        conn.execute(
            "INSERT INTO ghaf_online_info (key, value) VALUES ('region', ?) "
            "ON CONFLICT(key) DO NOTHING",
            (self.region,),
        )
        check_store_region(self.url, self._recorded_region(conn), self.region)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, cached_statements=512
                )
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    f"cannot open online store {self.path}: {exc}"
                ) from exc
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _key_sql(self, layout: ViewLayout) -> str:
        single_int = len(layout.join_keys) == 1 and layout.key_dtypes[0].startswith("int")
        return "INTEGER" if single_int else "TEXT"

    def _ensure(self, conn: sqlite3.Connection, layout: ViewLayout) -> None:
        wanted = orjson.dumps([layout.join_keys, layout.key_dtypes, layout.features]).decode()
        row = conn.execute(
            "SELECT layout FROM ghaf_online_meta WHERE view = ?", (layout.name,)
        ).fetchone()
        if row is not None and row[0] == wanted:
            return
        # A new or changed layout: rebuild the view's table in this same transaction.
        conn.execute(f"DROP TABLE IF EXISTS {_table(layout.name)}")
        columns = ", ".join(f"{_q(n)} {_SQL_TYPES[t]}" for n, t in layout.features)
        conn.execute(
            f"CREATE TABLE {_table(layout.name)} (__k {self._key_sql(layout)} PRIMARY KEY, "
            f"__ev INTEGER NOT NULL, {columns})"
        )
        conn.execute(
            "INSERT INTO ghaf_online_meta (view, watermark, layout) VALUES (?, -1, ?) "
            "ON CONFLICT(view) DO UPDATE SET layout = excluded.layout, watermark = -1",
            (layout.name, wanted),
        )

    def write_view(
        self, layout: ViewLayout, rows: pa.Table, *, watermark: datetime, replace: bool
    ) -> int:
        names = layout.feature_names
        if len(layout.join_keys) == 1:
            keys: list[Any] = rows.column(layout.join_keys[0]).to_pylist()
        else:
            parts = [rows.column(k).to_pylist() for k in layout.join_keys]
            keys = [composite_key(values) for values in zip(*parts, strict=True)]
        columns = [keys, rows.column("__ev").to_pylist()]
        for name, dtype in layout.features:
            columns.append(stored_form(rows.column(name), dtype).to_pylist())
        cols = ", ".join(_q(n) for n in ("__k", "__ev", *names))
        marks = ", ".join("?" for _ in range(len(names) + 2))
        updates = ", ".join(f"{_q(n)} = excluded.{_q(n)}" for n in ("__ev", *names))
        table = _table(layout.name)
        with self._write() as conn:
            self._record_region(conn)
            self._ensure(conn, layout)
            if replace:
                conn.execute(f"DELETE FROM {table}")  # nosec B608
            conn.executemany(
                f"INSERT INTO {table} ({cols}) VALUES ({marks}) ON CONFLICT(__k) "  # nosec B608
                f"DO UPDATE SET {updates} WHERE excluded.__ev >= {table}.__ev",
                zip(*columns, strict=True),
            )
            conn.execute(
                "UPDATE ghaf_online_meta SET watermark = ? WHERE view = ?",
                (int(watermark.timestamp() * 1_000_000), layout.name),
            )
        self._cache = {}
        return int(rows.num_rows)

    def read_many(
        self, layout: ViewLayout, keys: Sequence[Any], features: Sequence[str]
    ) -> list[Row | None]:
        if len(layout.join_keys) > 1:
            keys = [composite_key(k) for k in keys]
        if self.cache_seconds > 0:
            return self._cached(layout, keys, features)
        return self._fetch(layout, keys, features)

    def _fetch(
        self, layout: ViewLayout, keys: Sequence[Any], features: Sequence[str]
    ) -> list[Row | None]:
        conn = self._conn()
        one, many = self._statements(layout.name, features)
        try:
            if len(keys) == 1:
                return [conn.execute(one, (keys[0],)).fetchone()]
            rows = conn.execute(_keys_cte(len(keys)) + many, keys).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return [None] * len(keys)
            raise BackendUnavailableError(f"online store read failed: {exc}") from exc
        return [None if r[0] is None else r for r in rows]  # __ev is NOT NULL: None = absent

    def _statements(self, view: str, features: Sequence[str]) -> tuple[str, str]:
        """The one-key SELECT and the many-key SELECT (after :func:`_keys_cte`), built once.

        Many keys: a LEFT JOIN from the request's keys, in request order, one row per key
        (all NULL where absent). Measured at 100 keys it is ~20% faster than ``IN (...)``
        plus a dict back to request order (no ephemeral index, no Python re-ordering).
        The same string each call also lets sqlite3 reuse its prepared statement.
        """
        tag = (view, tuple(features))
        found = self._select.get(tag)
        if found is None:
            table = _table(view)
            found = (
                f"SELECT __ev, {', '.join(_q(n) for n in features)} "  # nosec B608
                f"FROM {table} WHERE __k = ?",
                f"SELECT f.__ev, {', '.join('f.' + _q(n) for n in features)} "  # nosec B608
                f"FROM k LEFT JOIN {table} f ON f.__k = k.key ORDER BY k.i",
            )
            self._select[tag] = found
        return found

    def _cached(
        self, layout: ViewLayout, keys: Sequence[Any], features: Sequence[str]
    ) -> list[Row | None]:
        # A batch is served wholly from the cache or wholly from one read, so it never
        # mixes two writes made by this process (writes clear the cache). Writes by
        # other processes show up within cache_seconds.
        now = time.monotonic()
        tag = (layout.name, tuple(features))
        cache = self._cache
        hits: list[Row | None] = []
        for key in keys:
            hit = cache.get((tag, key))
            if hit is None or hit[0] < now:
                break
            hits.append(hit[1])
        else:
            return hits
        rows = self._fetch(layout, keys, features)
        expires = now + self.cache_seconds
        for key, row in zip(keys, rows, strict=True):
            cache[(tag, key)] = (expires, row)
        return rows

    def read_all(self, layout: ViewLayout) -> pa.Table:
        names = layout.feature_names
        cols = ", ".join(_q(n) for n in ("__k", "__ev", *names))
        try:
            rows = self._conn().execute(f"SELECT {cols} FROM {_table(layout.name)}").fetchall()  # nosec B608
        except sqlite3.OperationalError:
            rows = []
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * (len(names) + 2)
        data: dict[str, Any] = {}
        if len(layout.join_keys) == 1:
            data[layout.join_keys[0]] = list(columns[0])
        else:
            split = [str(k).split(_SEP) for k in columns[0]]
            for i, key in enumerate(layout.join_keys):
                data[key] = [parts[i] for parts in split]
        data["__ev"] = pa.array(columns[1], pa.int64())
        for i, (name, dtype) in enumerate(layout.features):
            values = list(columns[i + 2])
            data[name] = pa.array(values, pa.int64() if dtype == "timestamp" else None)
        return pa.table(data)

    def watermark(self, view: str) -> datetime | None:
        row = (
            self._conn()
            .execute("SELECT watermark FROM ghaf_online_meta WHERE view = ?", (view,))
            .fetchone()
        )
        if row is None or row[0] < 0:
            return None
        return datetime.fromtimestamp(row[0] / 1_000_000, UTC)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
