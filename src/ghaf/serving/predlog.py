"""Prediction logging: every prediction to the event bus and a Parquet sink, never blocking.

``PredictionLogger.log`` only appends to a bounded in-memory buffer (a ``deque`` append
on the event loop). A background thread drains it in chunks, grouped per model version
into a columnar :class:`PredictionBatch` (one ``np.concatenate`` per column, no per-record
conversion), and hands that to the sinks. The drain holds the GIL only briefly, so it
does not stall the event loop under load (per-record ``tolist``/JSON did: p99 of 1-row
requests went from 14 ms to 150-200 ms with the log on). When the buffer is full (a slow
or down sink), the record is dropped and counted.

Features are logged as rows of numbers (``list<list<double>>``); their names and the
type the model received them as travel beside them: each Parquet file holds one model
version's batch and carries the version's column names and dtype in its schema metadata
(:data:`FEATURES_KEY`), and :func:`read_prediction_windows` reads a time window back as
a table of named, typed columns. Files written before the names were logged read with
the names ``f0, f1, ...`` (what a runtime calls unnamed columns) as float64.

Log files hold features (possibly pii), so they are encrypted at rest: given the home's key
provider (:func:`prediction_log_keys`), :func:`write_log_file` encrypts each file in memory
in a per-file envelope (:mod:`ghaf.security.file_envelope`, which says why not Parquet
Modular Encryption) and every reader goes through :func:`read_log_table`, which decrypts
it (plaintext files written before, or without keys, still read).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ghaf.errors import ConfigError
from ghaf.logs import get_logger
from ghaf.security.file_envelope import MAGIC, is_enveloped, seal, unseal

if TYPE_CHECKING:
    from ghaf.platform import Platform
    from ghaf.security.base import KeyProvider

SUBJECT = "serving.prediction"
_log = get_logger(__name__)

LOG_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("ts", pa.float64()),
        ("model", pa.string()),
        ("version", pa.string()),
        ("variant", pa.string()),
        ("latency_ms", pa.float64()),
        ("features", pa.list_(pa.list_(pa.float64()))),
        ("outputs", pa.map_(pa.string(), pa.list_(pa.list_(pa.float64())))),
        ("unit", pa.string()),
        ("experiment", pa.string()),
        ("shadow", pa.bool_()),
        ("revision", pa.int64()),
    ]
)
"""One row per request: its feature rows, and each named output's rows (2-D, float64);
the experiment unit and id when one assigned it, whether a shadow scored it, and the
deployment revision served (the last four are absent from logs written before them:
:func:`read_prediction_log` fills them with nulls)."""
FEATURES_KEY = b"ghaf.features"
"""Schema metadata key of a log file: ``{"columns": [names], "dtype": "float32"}``, the
name and type of each feature column of the one model version the file holds."""
_NUMERIC_DTYPES = frozenset(
    {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
     "uint32", "uint64", "bool"}
)  # fmt: skip


@dataclass(frozen=True)
class FeatureColumns:
    """The logged name mapping of one model version: feature names and their dtype."""

    names: tuple[str, ...]
    dtype: str = "float64"

    def to_metadata(self) -> bytes:
        return json.dumps({"columns": list(self.names), "dtype": self.dtype}).encode()

    @classmethod
    def from_metadata(cls, metadata: Mapping[bytes, bytes] | None, width: int) -> FeatureColumns:
        """The mapping a file carries, or ``f0..`` float64 for a file written without one
        (a mapping whose names do not match ``width`` is padded or cut, never trusted)."""
        names: list[str] = []
        dtype = "float64"
        raw = (metadata or {}).get(FEATURES_KEY)
        if raw is not None:
            try:
                body = json.loads(raw)
                names = [str(n) for n in body.get("columns") or []]
                dtype = str(body.get("dtype") or "float64")
            except (ValueError, AttributeError):
                names = []
        if dtype not in _NUMERIC_DTYPES:
            dtype = "float64"
        names = names[:width] + [f"f{i}" for i in range(len(names), width)]
        if len(set(names)) != len(names):  # duplicated names cannot be columns: number them
            names = [f"f{i}" for i in range(width)]
        return cls(tuple(names), dtype)


@dataclass
class PredictionBatch:
    """Logged requests of one model version, as columns (built off the event loop)."""

    model: str
    version: str
    request_ids: list[str]
    ts: np.ndarray
    latency_ms: np.ndarray
    variants: list[str | None]
    row_counts: np.ndarray
    features: np.ndarray
    outputs: dict[str, np.ndarray]
    units: list[str | None] | None = None
    experiments: list[str | None] | None = None
    shadow: np.ndarray | None = None
    revisions: list[int | None] | None = None
    columns: tuple[str, ...] = ()
    """The feature names (the served signature's columns; empty when unknown)."""
    dtype: str = "float64"
    """The dtype the model received its features as (the log stores float64)."""

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> PredictionBatch:
        """Records of ONE model version (``log``'s dicts) to columns."""
        first = records[0]
        features = [_matrix(r["features"]) for r in records]
        names = list(first["outputs"])
        dtype = str(features[0].dtype) if features else "float64"
        return cls(
            model=str(first["model"]),
            version=str(first["version"]),
            request_ids=[str(r["request_id"]) for r in records],
            ts=np.fromiter((r["ts"] for r in records), np.float64, len(records)),
            latency_ms=np.fromiter((r["latency_ms"] for r in records), np.float64, len(records)),
            variants=[r.get("variant") for r in records],
            row_counts=np.fromiter((len(f) for f in features), np.int64, len(records)),
            features=_stack(features),
            outputs={n: _stack([_matrix(r["outputs"][n]) for r in records]) for n in names},
            units=[r.get("unit") for r in records],
            experiments=[r.get("experiment") for r in records],
            shadow=np.fromiter((bool(r.get("shadow")) for r in records), np.bool_, len(records)),
            revisions=[r.get("revision") for r in records],
            columns=tuple(str(c) for c in first.get("columns") or ()),
            dtype=dtype if dtype in _NUMERIC_DTYPES else "float64",
        )

    def __len__(self) -> int:
        return len(self.request_ids)

    @property
    def feature_columns(self) -> FeatureColumns:
        """The name mapping this batch's file carries (``f0..`` where names are unknown)."""
        width = self.features.shape[1] if self.features.ndim == 2 else 0
        names = self.columns if len(self.columns) == width else ()
        return FeatureColumns.from_metadata(
            {FEATURES_KEY: FeatureColumns(names, self.dtype).to_metadata()}, width
        )

    def to_arrow(self) -> pa.Table:
        """The batch as a table of :data:`LOG_SCHEMA` (nested lists, no JSON), with the
        feature names and dtype in its schema metadata (:data:`FEATURES_KEY`)."""
        n = len(self)
        offsets = pa.array(np.concatenate([[0], np.cumsum(self.row_counts)]), pa.int32())
        names = list(self.outputs)
        per_output = [pa.ListArray.from_arrays(offsets, _rows(self.outputs[k])) for k in names]
        order = (np.arange(n)[:, None] + np.arange(len(names))[None, :] * n).ravel()
        items = pa.concat_arrays(per_output).take(pa.array(order)) if names else _empty_items()
        outputs = pa.MapArray.from_arrays(
            pa.array(np.arange(n + 1) * len(names), pa.int32()),
            pa.array(names * n, pa.string()),  # a list: an object ndarray would import pandas
            items,
        )
        columns = [
            pa.array(self.request_ids, pa.string()),
            pa.array(self.ts),
            pa.array([self.model] * n, pa.string()),
            pa.array([self.version] * n, pa.string()),
            pa.array(self.variants, pa.string()),
            pa.array(self.latency_ms),
            pa.ListArray.from_arrays(offsets, _rows(self.features)),
            outputs,
            pa.array(self.units or [None] * n, pa.string()),
            pa.array(self.experiments or [None] * n, pa.string()),
            pa.array(self.shadow if self.shadow is not None else np.zeros(n, np.bool_)),
            pa.array(self.revisions or [None] * n, pa.int64()),
        ]
        table = pa.Table.from_arrays(columns, schema=LOG_SCHEMA)
        return table.replace_schema_metadata({FEATURES_KEY: self.feature_columns.to_metadata()})

    def records(self) -> Iterator[dict[str, Any]]:
        """One plain (JSON-able) dict per request, for per-message sinks such as the bus."""
        bounds = np.concatenate([[0], np.cumsum(self.row_counts)])
        columns = list(self.feature_columns.names)
        for i, request_id in enumerate(self.request_ids):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            yield {
                "request_id": request_id,
                "ts": float(self.ts[i]),
                "model": self.model,
                "version": self.version,
                "variant": self.variants[i],
                "latency_ms": float(self.latency_ms[i]),
                "features": self.features[lo:hi].tolist(),
                "outputs": {k: v[lo:hi].tolist() for k, v in self.outputs.items()},
                "unit": self.units[i] if self.units else None,
                "experiment": self.experiments[i] if self.experiments else None,
                "shadow": bool(self.shadow[i]) if self.shadow is not None else False,
                "revision": self.revisions[i] if self.revisions else None,
                "columns": columns,
            }


def _matrix(value: Any) -> np.ndarray:
    """A request's rows as a 2-D array (1-D outputs become one column); no copy."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.ndim == 2:
        return array
    if array.ndim < 2:
        return array.reshape(-1, 1)
    return array.reshape(array.shape[0], int(np.prod(array.shape[1:])))


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    width = max((p.shape[1] for p in parts), default=0)
    if any(p.shape[1] != width for p in parts):  # ragged widths: pad with NaN
        parts = [
            np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=np.nan) for p in parts
        ]
    stacked = np.concatenate(parts) if parts else np.empty((0, 0))
    return stacked.astype(np.float64, copy=False)  # one conversion per column, not per record


def _rows(matrix: np.ndarray) -> pa.Array:
    """A 2-D array as a list<double> array, one list per row (zero-copy offsets)."""
    rows, width = matrix.shape
    offsets = pa.array(np.arange(rows + 1) * width, pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(matrix).ravel()))


def _empty_items() -> pa.Array:
    return pa.array([], pa.list_(pa.list_(pa.float64())))


LOG_KIND = "prediction_log"
"""The kind an encrypted log file's envelope names (a file of another kind is refused)."""


def prediction_log_keys(platform: Platform) -> KeyProvider | None:
    """The key provider prediction log files are encrypted with: the home's KEK (the
    encrypted artifact store's); None where the home's encryption at rest is off
    (``security.encrypt_artifacts = false``)."""
    from ghaf.security.encrypted_store import EncryptedArtifactStore

    store = platform.artifacts
    return store.keys if isinstance(store, EncryptedArtifactStore) else None


def write_log_file(path: Path, table: pa.Table, keys: KeyProvider | None) -> None:
    """Write ``table`` as the log file ``path``: Parquet built in memory, encrypted with
    ``keys`` (plain Parquet without), written beside ``path`` and renamed over it, so a
    reader sees no half-written file and no plaintext touches the disk."""
    out = pa.BufferOutputStream()
    pq.write_table(table, out)
    data: bytes | pa.Buffer = out.getvalue()
    if keys is not None:
        data = seal(memoryview(data), keys, kind=LOG_KIND)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as handle:
            handle.write(memoryview(data))
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_log_table(
    path: Path, columns: Sequence[str] | None = None, *, keys: KeyProvider | None = None
) -> pa.Table:
    """One log file (decrypted with ``keys`` if it is encrypted) as a table of its
    ``columns`` that it has (all without), with the file's schema metadata.

    Every reader of the log goes through here.

    Raises:
        ConfigError: the file is encrypted and no ``keys`` were given.
        IntegrityError: it does not decrypt (another home's KEK, a destroyed KEK
            version, a tampered or truncated file); the message names the file.
        pyarrow.ArrowInvalid, OSError: it is no Parquet file (a reader may skip it).
    """
    with path.open("rb") as handle:
        head = handle.read(len(MAGIC))
        if is_enveloped(head):
            if keys is None:
                raise ConfigError(
                    f"prediction log file {path} is encrypted and no key provider was given",
                    hint="read it through the home that wrote it (GHAF_HOME), which holds the KEK",
                )
            handle.seek(0)
            plain = unseal(handle.read(), keys, name=str(path), kind=LOG_KIND)
            source: Any = pa.BufferReader(plain)
        else:
            source = str(path)
    parquet = pq.ParquetFile(source)
    try:
        schema = parquet.schema_arrow
        wanted = None if columns is None else [c for c in columns if c in schema.names]
        table = parquet.read(columns=wanted)
    finally:
        parquet.close()
    return table.replace_schema_metadata(schema.metadata)


def read_prediction_log(
    directory: Path, columns: Sequence[str] | None = None, *, keys: KeyProvider | None = None
) -> pa.Table:
    """Every Parquet file a :class:`ParquetSink` wrote under ``directory`` as one table of
    :data:`LOG_SCHEMA` (or its ``columns``), decrypted with ``keys``; files written
    before a column existed read it as nulls (``shadow``: false)."""
    names = list(columns) if columns is not None else LOG_SCHEMA.names
    schema = pa.schema([LOG_SCHEMA.field(n) for n in names])
    tables = []
    for path in sorted(Path(directory).glob("*.parquet")):
        table = read_log_table(path, names, keys=keys)
        have = set(table.column_names)
        for name in names:
            if name not in have:
                field = LOG_SCHEMA.field(name)
                fill = pa.array([False] * table.num_rows) if name == "shadow" else None
                if fill is None:
                    fill = pa.nulls(table.num_rows, field.type)
                table = table.append_column(field, fill)
        tables.append(table.select(names).cast(schema))
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables)


@dataclass
class PredictionWindow:
    """One model version's logged predictions in a window: one entry per scored row.

    ``features`` has one named, typed column per feature (the log's name mapping);
    ``request_ids`` and ``ts`` (epoch milliseconds) say which request each row came from,
    and ``outputs`` holds each named output's rows (2-D float64).
    """

    model: str
    version: str
    features: pa.Table
    request_ids: pa.Array
    ts: np.ndarray
    outputs: dict[str, np.ndarray]
    requests: int

    @property
    def rows(self) -> int:
        """Scored rows (a request may send several)."""
        return int(self.ts.size)


_WINDOW_COLUMNS = ("request_id", "ts", "model", "version", "features", "outputs", "shadow")


_NUMBERED = re.compile(r"^(?P<prefix>.+)-(?P<seq>\d+)\.parquet$")


def log_files(directory: Path, *, since: float | None = None) -> list[Path]:
    """The complete Parquet files of a log directory, oldest first; with ``since`` (epoch
    seconds) only those modified at or after it: a file is written after every record it
    holds, so an older file holds no record of a window starting at ``since``.

    A sink numbers its files in the order it writes them, so their modification times
    grow with the number: the first file of each prefix modified at or after ``since``
    is found by bisection (a few ``stat`` calls however long the log, where a ``stat``
    of every file cost 2 s per 100,000 files). Files named otherwise are each checked.
    """
    try:
        entries = [e for e in os.scandir(directory) if e.name.endswith(".parquet")]
    except FileNotFoundError:
        return []
    numbered: dict[str, list[tuple[int, os.DirEntry[str]]]] = {}
    candidates: list[os.DirEntry[str]] = []
    for entry in entries:
        match = _NUMBERED.match(entry.name)
        if match is None:
            candidates.append(entry)
        else:
            numbered.setdefault(match["prefix"], []).append((int(match["seq"]), entry))
    for items in numbered.values():
        items.sort(key=lambda item: item[0])
        first = 0
        if since is not None:
            last = len(items)
            while first < last:
                middle = (first + last) // 2
                if _mtime(items[middle][1]) < since:
                    first = middle + 1
                else:
                    last = middle
        candidates += [entry for _, entry in items[first:]]
    found = [
        (_mtime(e), e.name, Path(e.path))
        for e in candidates
        if e.is_file(follow_symlinks=False) and (since is None or _mtime(e) >= since)
    ]
    return [path for _, _, path in sorted(found)]


def _mtime(entry: os.DirEntry[str]) -> float:
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:  # removed meanwhile (retention): it holds nothing now
        return float("-inf")


def read_prediction_windows(
    directory: Path,
    model: str,
    *,
    start_ms: float | None = None,
    end_ms: float | None = None,
    shadow: bool = False,
    features: bool = True,
    keys: KeyProvider | None = None,
) -> dict[str, PredictionWindow]:
    """The predictions ``model`` logged under ``directory`` with ``start_ms <= ts <
    end_ms``, one :class:`PredictionWindow` per version (shadow answers only with
    ``shadow``). ``features=False`` skips decoding the features (ids and outputs only).
    Encrypted files are decrypted with ``keys`` (:func:`read_log_table`).

    Files written before the name mapping was logged read as columns ``f0..`` (float64).
    """
    since = start_ms / 1000.0 if start_ms is not None else None
    parts: dict[str, list[tuple[pa.Table, FeatureColumns | None]]] = {}
    wanted = [c for c in _WINDOW_COLUMNS if features or c != "features"]
    for path in log_files(Path(directory), since=since):
        try:
            table = read_log_table(path, wanted, keys=keys)
        except (pa.ArrowInvalid, OSError):
            continue  # a foreign or damaged file is no prediction: skip it, as a reader must
        have = table.schema
        mask = pc.equal(table.column("model"), model)
        if start_ms is not None:
            mask = pc.and_(mask, pc.greater_equal(table.column("ts"), start_ms))
        if end_ms is not None:
            mask = pc.and_(mask, pc.less(table.column("ts"), end_ms))
        if "shadow" in table.column_names and not shadow:
            mask = pc.and_(mask, pc.invert(pc.fill_null(table.column("shadow"), False)))
        table = table.filter(pc.fill_null(mask, False))
        if table.num_rows == 0:
            continue
        for version in pc.unique(table.column("version")).to_pylist():
            part = table.filter(pc.equal(table.column("version"), version))
            mapping = None
            if features:
                width = _width(part.column("features"))
                mapping = FeatureColumns.from_metadata(have.metadata, width)
            parts.setdefault(str(version), []).append((part, mapping))
    return {v: _window(model, v, chunks, features) for v, chunks in parts.items()}


def _width(column: pa.ChunkedArray) -> int:
    rows = pc.list_flatten(column)
    lengths = pc.list_value_length(rows)
    top = pc.max(lengths).as_py() if len(rows) else 0
    return int(top or 0)


def _window(
    model: str, version: str, chunks: list[tuple[pa.Table, FeatureColumns | None]], features: bool
) -> PredictionWindow:
    mapping = next((m for _, m in chunks if m is not None), None)
    if mapping is not None and any(m is not None and m != mapping for _, m in chunks):
        # A version's files disagree (a re-registered signature): the latest names win.
        mapping = chunks[-1][1]
    ids: list[pa.Array] = []
    ts: list[np.ndarray] = []
    matrices: list[np.ndarray] = []
    outputs: dict[str, list[np.ndarray]] = {}
    requests = 0
    for table, _ in chunks:
        requests += table.num_rows
        column = table.column("outputs")
        # Each request's feature rows (or, without features, its first output's rows).
        nested = table.column("features") if features else _first_output(column)
        parents = pc.list_parent_indices(nested)
        ids.append(pc.take(table.column("request_id"), parents).combine_chunks())
        ts.append(pc.take(table.column("ts"), parents).to_numpy())
        rows = len(parents)
        if features and mapping is not None:
            width = len(mapping.names)
            matrices.append(_matrix_of(pc.list_flatten(nested), rows, width))
        for name in _output_names(column):
            values = pc.map_lookup(column, pa.scalar(name), "first")
            flat = pc.list_flatten(values)
            width = int(pc.max(pc.list_value_length(flat)).as_py() or 0) if len(flat) else 0
            if len(flat) == rows:
                outputs.setdefault(name, []).append(_matrix_of(flat, rows, width))
    names = mapping.names if mapping is not None else ()
    dtype = np.dtype(mapping.dtype if mapping is not None else "float64")
    matrix = np.concatenate(matrices) if matrices else np.zeros((sum(map(len, ts)), len(names)))
    columns = [_arrow_column(matrix[:, j].astype(dtype, copy=False)) for j in range(len(names))]
    return PredictionWindow(
        model=model,
        version=version,
        features=pa.Table.from_arrays(columns, names=list(names)) if names else pa.table({}),
        request_ids=pa.concat_arrays(ids) if ids else pa.array([], pa.string()),
        ts=np.concatenate(ts) if ts else np.zeros(0),
        outputs={k: np.concatenate(v) for k, v in outputs.items()},
        requests=requests,
    )


def _first_output(column: pa.ChunkedArray) -> pa.ChunkedArray:
    names = _output_names(column)
    if not names:
        return pa.chunked_array([pa.nulls(len(column), pa.list_(pa.list_(pa.float64())))])
    return pc.map_lookup(column, pa.scalar(names[0]), "first")


def _output_names(column: pa.ChunkedArray) -> list[str]:
    """The output names of a log part (every request of a batch has the same ones)."""
    for chunk in column.chunks:
        if len(chunk):
            first = chunk[0].as_py()
            return [str(k) for k, _ in first] if first else []
    return []


def _matrix_of(rows: pa.Array | pa.ChunkedArray, count: int, width: int) -> np.ndarray:
    """A list<double> array of ``count`` rows of ``width`` values as a 2-D float64 array
    (a shorter row is padded with NaN, as the log pads ragged widths)."""
    values = pc.list_flatten(rows)
    flat = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    if flat.size == count * width:
        return flat.reshape(count, width)
    lengths = np.asarray(pc.list_value_length(rows).to_numpy(zero_copy_only=False))
    out = np.full((count, width), np.nan)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for i in range(count):  # only ragged parts get here (padded by the writer otherwise)
        out[i, : lengths[i]] = flat[starts[i] : starts[i] + lengths[i]]
    return out


def _arrow_column(values: np.ndarray) -> pa.Array:
    """A 1-D numeric NumPy array as Arrow, from its buffer (no pandas import)."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        return pa.array(values.tolist(), pa.bool_())
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, values.size, [None, pa.py_buffer(values)])


class PredictionSink(Protocol):
    """Where drained predictions go, one model version's batch at a time; may be slow or raise."""

    def write(self, batch: PredictionBatch) -> None: ...

    def close(self) -> None: ...


class EventBusSink:
    """Publishes one event per request on ``serving.prediction.<model>``."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus

    def write(self, batch: PredictionBatch) -> None:
        for record in batch.records():
            self.bus.publish(f"{SUBJECT}.{record['model']}", record, msg_id=record["request_id"])

    def close(self) -> None:
        """The bus belongs to the platform; nothing to close here."""


class ParquetSink:
    """Appends batches to Parquet files under ``directory``, one file per batch,
    encrypted with ``keys`` (the home's KEK, :func:`prediction_log_keys`) when given.

    Numbering continues after the highest file of the same prefix already there, so a
    restarted server never replaces the files an earlier run wrote.
    """

    def __init__(
        self, directory: Path, prefix: str = "predictions", *, keys: KeyProvider | None = None
    ) -> None:
        self.directory = directory
        self.prefix = prefix
        self.keys = keys
        directory.mkdir(parents=True, exist_ok=True)
        self._seq = _last_sequence(directory, prefix)

    def write(self, batch: PredictionBatch) -> None:
        self._seq += 1
        final = self.directory / f"{self.prefix}-{self._seq:08d}.parquet"
        write_log_file(final, batch.to_arrow(), self.keys)  # renamed whole: never half-seen

    def close(self) -> None:
        """Each flush is a complete file; nothing is held open."""


def _last_sequence(directory: Path, prefix: str) -> int:
    pattern = re.compile(r"\.?" + re.escape(prefix) + r"-(\d+)\.(?:parquet|partial)")
    numbers = [int(m.group(1)) for p in directory.iterdir() if (m := pattern.match(p.name))]
    return max(numbers, default=0)


class PredictionLogger:
    """Bounded buffer + background flusher over a list of sinks."""

    def __init__(
        self,
        sinks: Sequence[PredictionSink],
        *,
        capacity: int = 100_000,
        flush_every: float = 0.5,
        chunk: int = 5_000,
    ) -> None:
        self.sinks = list(sinks)
        self.capacity = capacity
        self.flush_every = flush_every
        self.chunk = chunk
        self.dropped = 0
        self.written = 0
        self.failed_writes = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._stop = threading.Event()
        _warm_arrow()
        self._thread = threading.Thread(target=self._drain, name="ghaf-predlog", daemon=True)
        self._thread.start()

    def log(self, record: dict[str, Any]) -> None:
        """Queue one record; O(1), never blocks; drops (and counts) when the buffer is full.

        ``features`` and each of ``outputs``' values are arrays (views are fine): they are
        converted in the background thread, not here.
        """
        if len(self._buffer) >= self.capacity:
            self.dropped += 1
            return
        self._buffer.append(record)

    def _drain(self) -> None:
        while not self._stop.wait(self.flush_every):
            self.flush()
        self.flush()

    def flush(self) -> None:
        """Write whatever is buffered (called by the background thread and at close)."""
        while self._buffer:
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for _ in range(min(self.chunk, len(self._buffer))):
                record = self._buffer.popleft()
                groups.setdefault((record["model"], record["version"]), []).append(record)
            for records in groups.values():
                self._write(records)

    def _write(self, records: list[dict[str, Any]]) -> None:
        try:
            batch = PredictionBatch.from_records(records)
        except (ValueError, TypeError, KeyError) as exc:
            self.failed_writes += 1
            _log.warning("prediction records not loggable", error=str(exc), count=len(records))
            return
        for sink in self.sinks:
            try:
                sink.write(batch)
            except Exception as exc:  # noqa: BLE001 - a down sink must not take serving down
                self.failed_writes += 1
                _log.warning("prediction sink failed", sink=type(sink).__name__, error=str(exc))
        self.written += len(records)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        for sink in self.sinks:
            sink.close()


def _warm_arrow() -> None:
    """Build one tiny batch at start-up: pyarrow's first conversion imports pandas (~0.5 s
    holding the GIL), which must not happen in the drain thread while requests are served."""
    one = {"request_id": "", "ts": 0.0, "model": "", "version": "", "latency_ms": 0.0}
    PredictionBatch.from_records([{**one, "features": np.zeros((1, 1)), "outputs": {}}]).to_arrow()


def now_ms() -> float:
    return time.time() * 1000.0
