"""Redis online store: one hash per entity per view, pipelined reads, MULTI/EXEC writes.

Every command retries a dropped or timed-out connection with exponential backoff
(``RETRIES`` tries, ~3 s in all), so a Redis restart costs the callers during it a
wait, and the store works again once Redis is back; past the retries the caller gets
:class:`~ghaf.errors.BackendUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ghaf.errors import BackendUnavailableError, MissingDependencyError
from ghaf.features.base import Row, ViewLayout, stored_form
from ghaf.features.regions import check_store_region

_SEP = "\x1f"
RETRIES = 6
"""Retries of a command on a dropped connection: waits of 0.05 s doubling to 2 s (jittered)."""


def _decoder(dtype: str) -> Callable[[bytes], Any]:
    if dtype.startswith("float"):
        return float
    if dtype.startswith("int") or dtype == "timestamp":
        return int
    if dtype == "bool":
        return lambda raw: raw == b"1"
    return lambda raw: raw.decode()


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _encode(value: Any) -> Any:
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, float):
        return repr(value)
    return value


class RedisOnlineStore:
    """``redis://HOST:PORT/DB[?prefix=P]``.

    Writes run in one MULTI/EXEC transaction, so a killed writer leaves the previous
    state (Redis discards a transaction that never reached EXEC). ``region`` is where
    its data is declared to live: the first write records it under ``PREFIX:region``,
    and an open that declares another region is refused.
    """

    def __init__(self, url: str, *, prefix: str | None = None, region: str | None = None) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - the extra is installed in CI
            raise MissingDependencyError("redis", "redis") from exc
        from urllib.parse import parse_qs, urlparse

        self.url = url
        query = parse_qs(urlparse(url).query)
        self.prefix = prefix or query.get("prefix", ["ghaf"])[0]
        from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
        from redis.retry import Retry

        clean = url.split("?", 1)[0]
        self._redis = redis.Redis.from_url(
            clean,
            retry=Retry(ExponentialWithJitterBackoff(cap=2.0, base=0.05), RETRIES),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        # health() answers at once: its own client, one try, short timeouts.
        self._probe = redis.Redis.from_url(
            clean, retry=Retry(NoBackoff(), 0), socket_connect_timeout=1, socket_timeout=1
        )
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._decoders: dict[tuple[ViewLayout, tuple[str, ...]], list[Callable[[Any], Any]]] = {}
        self.region: str | None = region
        if region is not None:
            recorded = self._recorded_region()
            check_store_region(self.url, recorded, region)

    def _recorded_region(self) -> str | None:
        try:
            raw = self._redis.get(f"{self.prefix}:region")
        except self._errors as exc:
            raise BackendUnavailableError(f"Redis online store read failed: {exc}") from exc
        return None if raw is None else _text(raw)

    def _key(self, view: str, key: Any) -> str:
        if isinstance(key, tuple):
            key = _SEP.join(str(k) for k in key)
        return f"{self.prefix}:fv:{view}:{key}"

    def _index(self, view: str) -> str:
        return f"{self.prefix}:fvkeys:{view}"

    def write_view(
        self, layout: ViewLayout, rows: pa.Table, *, watermark: datetime, replace: bool
    ) -> int:
        names = layout.feature_names
        keys_cols = [rows.column(k).to_pylist() for k in layout.join_keys]
        keys = list(zip(*keys_cols, strict=True)) if len(keys_cols) > 1 else keys_cols[0]
        redis_keys = [self._key(layout.name, k) for k in keys]
        evs = rows.column("__ev").to_pylist()
        values = []
        for name, dtype in layout.features:
            values.append(stored_form(rows.column(name), dtype).to_pylist())
        if self.region is not None:
            check_store_region(self.url, self._recorded_region(), self.region)
        try:
            stored = {} if replace else self._stored_events(redis_keys)
            pipe = self._redis.pipeline(transaction=True)
            if self.region is not None:  # recorded with the first data written
                pipe.set(f"{self.prefix}:region", self.region, nx=True)
            if replace:
                old = {_text(k) for k in self._redis.smembers(self._index(layout.name))}
                stale = old - set(redis_keys)
                if stale:
                    pipe.delete(*stale)
                pipe.delete(self._index(layout.name))
            written = 0
            for i, rkey in enumerate(redis_keys):
                if stored.get(rkey, -(2**63)) > evs[i]:
                    continue  # a newer value is stored: keep it
                mapping: dict[str, Any] = {"__ev": evs[i]}
                for j, name in enumerate(names):
                    if values[j][i] is not None:
                        mapping[name] = _encode(values[j][i])
                pipe.delete(rkey)
                pipe.hset(rkey, mapping=mapping)  # type: ignore[arg-type]
                written += 1
            if redis_keys:
                pipe.sadd(self._index(layout.name), *redis_keys)
            pipe.hset(f"{self.prefix}:fvmeta", layout.name, int(watermark.timestamp() * 1_000_000))
            pipe.execute()
        except self._errors as exc:
            raise BackendUnavailableError(f"Redis online store write failed: {exc}") from exc
        return written

    def _stored_events(self, redis_keys: list[str]) -> dict[str, int]:
        pipe = self._redis.pipeline(transaction=False)
        for rkey in redis_keys:
            pipe.hget(rkey, "__ev")
        return {k: int(v) for k, v in zip(redis_keys, pipe.execute(), strict=True) if v is not None}

    def read_many(
        self, layout: ViewLayout, keys: Sequence[Any], features: Sequence[str]
    ) -> list[Row | None]:
        tag = (layout, tuple(features))  # the layout's types: a sealed view reads strings
        decoders = self._decoders.get(tag)
        if decoders is None:
            types = dict(layout.features)
            decoders = [int, *(_decoder(types[f]) for f in features)]
            self._decoders[tag] = decoders
        fields = ["__ev", *features]
        try:
            if len(keys) == 1:
                replies = [self._redis.hmget(self._key(layout.name, keys[0]), fields)]
            else:
                # MULTI/EXEC: the batch reads one state, never straddling a write.
                pipe = self._redis.pipeline(transaction=True)
                for key in keys:
                    pipe.hmget(self._key(layout.name, key), fields)
                replies = pipe.execute()
        except self._errors as exc:
            raise BackendUnavailableError(f"Redis online store read failed: {exc}") from exc
        out: list[Row | None] = []
        for reply in replies:
            if reply[0] is None:
                out.append(None)
            else:
                out.append(
                    tuple(
                        None if raw is None else dec(raw)
                        for dec, raw in zip(decoders, reply, strict=True)
                    )
                )
        return out

    def health(self) -> dict[str, Any]:
        """Whether Redis answers a PING now (``connected``) or not (``unreachable``)."""
        try:
            self._probe.ping()
        except self._errors as exc:
            return {"backend": "redis", "state": "unreachable", "error": str(exc)}
        return {"backend": "redis", "state": "connected"}

    def read_all(self, layout: ViewLayout) -> pa.Table:
        try:
            members = sorted(_text(k) for k in self._redis.smembers(self._index(layout.name)))
        except self._errors as exc:
            raise BackendUnavailableError(f"Redis online store read failed: {exc}") from exc
        prefix = f"{self.prefix}:fv:{layout.name}:"
        raw_keys = [m.removeprefix(prefix) for m in members]
        if len(layout.join_keys) == 1:
            keys: list[Any] = [
                int(k) if layout.key_dtypes[0].startswith("int") else k for k in raw_keys
            ]
        else:
            keys = [tuple(k.split(_SEP)) for k in raw_keys]
        rows = self.read_many(layout, keys, layout.feature_names) if keys else []
        keys = [k for k, r in zip(keys, rows, strict=True) if r is not None]
        data: dict[str, Any] = {}
        if len(layout.join_keys) == 1:
            data[layout.join_keys[0]] = keys
        else:
            for i, name in enumerate(layout.join_keys):
                data[name] = [k[i] for k in keys]
        present = [r for r in rows if r is not None]
        data["__ev"] = pa.array([r[0] for r in present], pa.int64())
        for i, name in enumerate(layout.feature_names):
            data[name] = [r[i + 1] for r in present]
        return pa.table(data)

    def watermark(self, view: str) -> datetime | None:
        try:
            raw = self._redis.hget(f"{self.prefix}:fvmeta", view)
        except self._errors as exc:
            raise BackendUnavailableError(f"Redis online store read failed: {exc}") from exc
        if raw is None:
            return None
        return datetime.fromtimestamp(int(_text(raw)) / 1_000_000, UTC)

    def close(self) -> None:
        self._redis.close()
        self._probe.close()

    def drop_all(self) -> None:
        """Delete every key under this store's prefix (tests, teardown)."""
        keys = list(self._redis.scan_iter(match=f"{self.prefix}:*", count=1000))
        if keys:
            self._redis.delete(*keys)
