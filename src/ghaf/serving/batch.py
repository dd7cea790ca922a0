"""Batch scoring: stream record batches from Parquet/CSV, score in parallel, write in order.

Reading and writing happen in the calling thread while up to ``workers`` batches are
scored in a thread pool (each scoring thread with one math-library thread, so the
cores are used by batches rather than oversubscribed), so read, score and write overlap
and memory stays bounded by ``workers x 2`` batches whatever the input size.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.serving.base import Array, Runtime


@dataclass(frozen=True)
class ScoreStats:
    """What a scoring run did."""

    rows: int
    batches: int
    output: Path | None


class Scorer(Protocol):
    """Scores a whole input elsewhere (on a Ray cluster): the scored batches in input order
    (what :func:`score_batches` yields for it) and the input's row count when known."""

    def __call__(
        self, source: Path, batch_rows: int
    ) -> tuple[Iterator[pa.RecordBatch], int | None]: ...


def _limit_one() -> None:
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threadpool_limits(limits=1)


def read_batches(
    path: Path, batch_rows: int = 65_536
) -> tuple[Iterator[pa.RecordBatch], int | None]:
    """Record batches of a Parquet or CSV file, and its row count when known."""
    if not path.is_file():
        raise NotFoundError(f"input file {path} does not exist", hint="check the path")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        # pre_buffer (the default) caches every column chunk read until the reader ends,
        # so memory grew with the file (1.1 GiB of Arrow memory for 10M rows x 20 floats).
        handle = pq.ParquetFile(path, pre_buffer=False)
        return handle.iter_batches(batch_size=batch_rows), handle.metadata.num_rows
    if suffix == ".csv":
        import pyarrow.csv as pacsv

        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=8 << 20))
        return iter(reader), None
    raise InvalidInputError(
        f"cannot read {path.name}: unknown format {suffix!r}", hint="use .parquet or .csv"
    )


def _feature_matrix(batch: pa.RecordBatch, columns: Sequence[str]) -> Array:
    missing = [c for c in columns if c not in batch.schema.names]
    if missing:
        raise InvalidInputError(
            f"input has no column {missing[0]!r}",
            hint=f"the model needs: {', '.join(columns)}",
        )
    matrix = np.empty((batch.num_rows, len(columns)), dtype=np.float32)
    for index, column in enumerate(columns):
        matrix[:, index] = batch.column(column).to_numpy(zero_copy_only=False)
    return matrix


def score_batch(runtime: Runtime, batch: pa.RecordBatch, keep: Sequence[str]) -> pa.RecordBatch:
    """The scored batch: the ``keep`` columns followed by one column per output value."""
    columns = list(runtime.signature.columns) or list(batch.schema.names)
    outputs = runtime.predict(_feature_matrix(batch, columns))
    arrays: list[pa.Array] = [batch.column(name) for name in keep]
    names = list(keep)
    for name, values in outputs.items():
        matrix = values.reshape(len(values), -1)
        for j in range(matrix.shape[1]):
            arrays.append(pa.array(matrix[:, j]))
            names.append(name if matrix.shape[1] == 1 else f"{name}_{j}")
    return pa.RecordBatch.from_arrays(arrays, names=names)


def score_batches(
    runtime: Runtime,
    batches: Iterator[pa.RecordBatch],
    *,
    keep: Sequence[str] | None = None,
    workers: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Score ``batches`` in a thread pool, yielding results in input order."""
    workers = workers or os.cpu_count() or 1
    feature_set = set(runtime.signature.columns)
    with ThreadPoolExecutor(
        workers, thread_name_prefix="ghaf-score", initializer=_limit_one
    ) as pool:
        pending: deque[Future[pa.RecordBatch]] = deque()
        for batch in batches:
            kept = (
                keep
                if keep is not None
                else [n for n in batch.schema.names if n not in feature_set]
            )
            pending.append(pool.submit(score_batch, runtime, batch, kept))
            if len(pending) >= workers * 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def score_file(
    runtime: Runtime,
    source: Path,
    output: Path,
    *,
    keep: Sequence[str] | None = None,
    workers: int | None = None,
    batch_rows: int = 65_536,
    progress: bool = True,
    metadata: dict[bytes, bytes] | None = None,
    scorer: Scorer | None = None,
) -> ScoreStats:
    """Score ``source`` (Parquet/CSV) into ``output`` (Parquet/CSV), written atomically.

    ``metadata`` goes into a Parquet output's key-value metadata (the data's tags).
    ``scorer`` scores elsewhere (``ghaf predict --on ray``); this writes what it yields.
    """
    if scorer is None:
        batches, total = read_batches(source, batch_rows)
        scored_batches = score_batches(runtime, batches, keep=keep, workers=workers)
    else:
        scored_batches, total = scorer(source, batch_rows)
    suffix = output.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise InvalidInputError(
            f"cannot write {output.name}: unknown format {suffix!r}", hint="use .parquet or .csv"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    rows = count = 0
    writer: Any = None
    bar = _Progress(total, enabled=progress)
    try:
        for scored in scored_batches:
            if writer is None:
                writer = _writer(partial, scored.schema, suffix, metadata)
            writer.write_batch(scored)
            rows += scored.num_rows
            count += 1
            bar.advance(scored.num_rows)
        if writer is None:
            raise InvalidInputError(f"{source.name} has no rows", hint="score a non-empty file")
        writer.close()
        writer = None
        partial.replace(output)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return ScoreStats(rows, count, output)


def _writer(
    path: Path, schema: pa.Schema, suffix: str, metadata: dict[bytes, bytes] | None = None
) -> Any:
    if suffix == ".csv":
        import pyarrow.csv as pacsv

        return pacsv.CSVWriter(path, schema)
    import pyarrow.parquet as pq

    # Scores rarely repeat, so dictionary-encoding float columns is wasted work (it was
    # 85% of the writer's CPU on W6); ids and categories keep it.
    encoded = [f.name for f in schema if not pa.types.is_floating(f.type)]
    if metadata:
        schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    return pq.ParquetWriter(path, schema, use_dictionary=encoded)


class _Progress:
    """A Rich progress bar over rows (or a no-op)."""

    def __init__(self, total: int | None, *, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            self._task = self._bar.add_task("scoring rows", total=total)

    def advance(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, rows)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
