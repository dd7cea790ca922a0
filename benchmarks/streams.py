"""Stream ingestion: append a part per micro-batch against rewriting the dataset each time.

N micro-batches of the same size are written as versions of one dataset, twice in one
home: by ``write_micro_batch`` (today's append: each batch one new encrypted part) and by
the behaviour it replaced, the anchor (each batch writes the previous version's rows plus
its own as a whole new version, as stream ingestion did before issue 22). Figures: the
bytes stored and the seconds for the first and the last tenth of the batches (the
acceptance: 1,000 batches, the last hundred as fast as the first), and the ratio of the
total bytes written. Full: 1,000 batches of 200 rows; smoke: 40 of 50.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING

from benchmarks.common import Figure

if TYPE_CHECKING:
    import pyarrow as pa

    from ghaf.platform import Platform

SIZES = {"smoke": (40, 50), "full": (1_000, 200)}


def _records(batch: int, rows: int) -> list[dict[str, object]]:
    return [
        {"id": batch * rows + i, "amount": float((batch * 31 + i) % 997), "channel": f"c{i % 5}"}
        for i in range(rows)
    ]


def _append(
    platform: Platform, batches: int, rows: int, *, name: str = "appended"
) -> Iterator[tuple[float, int]]:
    from ghaf.data.store import get_dataset
    from ghaf.data.stream import write_micro_batch

    size = 0
    for batch in range(batches):
        records = _records(batch, rows)
        keys = [str(r["id"]) for r in records]
        started = time.perf_counter()
        version = write_micro_batch(platform, platform.admin(), name, records, keys, source="bench")
        seconds = time.perf_counter() - started
        assert version is not None
        written = get_dataset(platform, version.ref).size - size
        size += written
        yield seconds, written


def _rewrite(
    platform: Platform, batches: int, rows: int, *, name: str = "rewritten"
) -> Iterator[tuple[float, int]]:
    """The anchor: every batch stores the previous rows and its own as a new whole version."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ghaf.data.store import dataset_parquet_path, write_dataset

    previous: str | None = None
    for batch in range(batches):
        table = pa.Table.from_pylist(_records(batch, rows))
        started = time.perf_counter()

        def data(
            table: pa.Table = table, previous: str | None = previous
        ) -> Iterator[pa.RecordBatch]:
            if previous is not None:
                path = dataset_parquet_path(platform, previous)
                yield from pq.ParquetFile(path).iter_batches()
            yield from table.to_batches()

        version = write_dataset(platform, platform.admin(), name, data(), source="bench")
        seconds = time.perf_counter() - started
        previous = version.ref
        yield seconds, version.size


def run(size_name: str) -> list[Figure]:
    from ghaf.home import init_home
    from ghaf.settings import load_settings

    batches, rows = SIZES[size_name]
    tenth = max(1, batches // 10)
    with (
        tempfile.TemporaryDirectory() as tmp,
        init_home(load_settings(home=Path(tmp) / "home")) as platform,
    ):
        for warm in (_append, _rewrite):  # imports and first-use costs, not measured
            list(warm(platform, 2, rows, name="warm-" + warm.__name__.strip("_")))
        ours = list(_append(platform, batches, rows))
        anchor = list(_rewrite(platform, batches, rows))
    figures: list[Figure] = []
    for label, part in (("first", slice(0, tenth)), ("last", slice(-tenth, None))):
        figures.append(
            Figure(
                f"stream_{label}_tenth_ms_per_batch",
                fmean(s for s, _ in ours[part]) * 1000,
                "ms",
                anchor="rewrite (stream ingestion before issue 22)",
                anchor_value=fmean(s for s, _ in anchor[part]) * 1000,
                higher_is_better=False,
            )
        )
        figures.append(
            Figure(
                f"stream_{label}_tenth_bytes_per_batch",
                fmean(b for _, b in ours[part]),
                "bytes",
                anchor="rewrite (stream ingestion before issue 22)",
                anchor_value=fmean(b for _, b in anchor[part]),
                higher_is_better=False,
            )
        )
    figures.append(
        Figure(
            "stream_total_bytes_written",
            sum(b for _, b in ours) / 1e6,
            "MB",
            anchor="rewrite (stream ingestion before issue 22)",
            anchor_value=sum(b for _, b in anchor) / 1e6,
            higher_is_better=False,
        )
    )
    figures.append(
        Figure(
            "stream_total_seconds",
            sum(s for s, _ in ours),
            "s",
            anchor="rewrite (stream ingestion before issue 22)",
            anchor_value=sum(s for s, _ in anchor),
            higher_is_better=False,
        )
    )
    figures.append(Figure("stream_batches", batches, "batches"))
    return figures
