"""The prediction log's name mapping: each file carries its version's feature names and
dtype, a time window reads back as named, typed columns, and old logs still read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.serving.predlog import (
    FEATURES_KEY,
    LOG_SCHEMA,
    ParquetSink,
    PredictionBatch,
    PredictionLogger,
    log_files,
    read_prediction_log,
    read_prediction_windows,
)

NAMES = ("amount", "age", "score")


def _record(
    i: int, rows: int, *, version: str = "1", model: str = "fraud", shadow: bool = False
) -> dict[str, Any]:
    features = (np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + 10 * i).astype(np.float32)
    return {
        "request_id": f"r{i}",
        "ts": 1000.0 * i,
        "model": model,
        "version": version,
        "variant": "primary",
        "latency_ms": 1.0,
        "features": features,
        "outputs": {
            "probabilities": np.column_stack([1 - features[:, 0] / 1e3, features[:, 0] / 1e3])
        },
        "shadow": shadow,
        "columns": NAMES,
    }


def test_a_window_reads_back_as_named_typed_columns(tmp_path: Path) -> None:
    logger = PredictionLogger([ParquetSink(tmp_path)], flush_every=60)
    for i in range(6):
        logger.log(_record(i, 1 + i % 2))
    logger.log(_record(6, 1, shadow=True))
    logger.log(_record(7, 1, model="other"))
    logger.close()
    metadata = pq.read_schema(sorted(tmp_path.glob("*.parquet"))[0]).metadata
    assert b'"amount"' in metadata[FEATURES_KEY]
    windows = read_prediction_windows(tmp_path, "fraud", start_ms=1000.0, end_ms=5000.0)
    assert list(windows) == ["1"]
    window = windows["1"]
    assert window.features.column_names == list(NAMES)
    assert window.features.schema.field("amount").type == pa.float32()
    # requests 1..4: 2 + 1 + 2 + 1 rows; the shadow answer and the other model are left out
    assert window.requests == 4 and window.rows == 6
    assert window.request_ids.to_pylist() == ["r1", "r1", "r2", "r3", "r3", "r4"]
    assert window.features.column("amount").to_pylist() == [10, 13, 20, 30, 33, 40]
    assert window.outputs["probabilities"].shape == (6, 2)
    np.testing.assert_allclose(
        window.outputs["probabilities"][:, 1], [0.01, 0.013, 0.02, 0.03, 0.033, 0.04]
    )
    assert list(window.ts) == [1000.0, 1000.0, 2000.0, 3000.0, 3000.0, 4000.0]
    ids_only = read_prediction_windows(tmp_path, "fraud", features=False)["1"]
    assert ids_only.features.num_columns == 0 and ids_only.outputs["probabilities"].shape == (9, 2)
    shadows = read_prediction_windows(tmp_path, "fraud", shadow=True)["1"]
    assert shadows.requests == 7


def test_an_old_format_log_reads_with_numbered_float64_columns(tmp_path: Path) -> None:
    """A file written before names (and unit, experiment, shadow, revision) were logged."""
    old_schema = pa.schema([LOG_SCHEMA.field(n) for n in LOG_SCHEMA.names[:8]])
    rows = [
        {
            "request_id": f"old{i}",
            "ts": 100.0 * i,
            "model": "fraud",
            "version": "2",
            "variant": "primary",
            "latency_ms": 2.0,
            "features": [[float(i), float(-i)]],
            "outputs": [("probabilities", [[0.9, 0.1]])],
        }
        for i in range(5)
    ]
    pq.write_table(
        pa.Table.from_pylist(rows, schema=old_schema), tmp_path / "predictions-1.parquet"
    )
    whole = read_prediction_log(tmp_path)
    assert whole.num_rows == 5 and whole.column("shadow").to_pylist() == [False] * 5
    window = read_prediction_windows(tmp_path, "fraud", start_ms=100.0)["2"]
    assert window.features.column_names == ["f0", "f1"]
    assert window.features.schema.field("f0").type == pa.float64()
    assert window.features.column("f1").to_pylist() == [-1.0, -2.0, -3.0, -4.0]
    assert window.outputs["probabilities"][:, 1].tolist() == [0.1] * 4


def test_a_mapping_that_does_not_fit_the_rows_is_not_trusted(tmp_path: Path) -> None:
    batch = PredictionBatch.from_records([{**_record(0, 1), "columns": ("a", "b")}])
    table = batch.to_arrow()
    pq.write_table(table, tmp_path / "p-1.parquet")
    window = read_prediction_windows(tmp_path, "fraud")["1"]
    assert window.features.column_names == ["f0", "f1", "f2"]
    bad = table.replace_schema_metadata({FEATURES_KEY: b"{not json"})
    pq.write_table(bad, tmp_path / "p-1.parquet")
    assert read_prediction_windows(tmp_path, "fraud")["1"].features.column_names == [
        "f0",
        "f1",
        "f2",
    ]


def test_a_restarted_sink_numbers_after_the_files_already_there(tmp_path: Path) -> None:
    batch = PredictionBatch.from_records([_record(0, 1)])
    first = ParquetSink(tmp_path, prefix="predictions-w0")
    first.write(batch)
    first.write(batch)
    again = ParquetSink(tmp_path, prefix="predictions-w0")
    again.write(batch)
    names = sorted(p.name for p in tmp_path.glob("*.parquet"))
    assert names == [f"predictions-w0-0000000{i}.parquet" for i in (1, 2, 3)]


def test_files_older_than_the_window_are_not_opened(tmp_path: Path) -> None:
    """A file is written after every record it holds: one modified before the window
    starts is skipped without being read (here it claims a record inside the window)."""
    sink = ParquetSink(tmp_path)
    sink.write(PredictionBatch.from_records([{**_record(1, 1), "ts": 30_000.0}]))
    os.utime(next(tmp_path.glob("*.parquet")), (10.0, 10.0))  # written at t = 10 s
    sink.write(PredictionBatch.from_records([{**_record(2, 1), "ts": 40_000.0}]))
    window = read_prediction_windows(tmp_path, "fraud", start_ms=20_000.0)
    assert window["1"].request_ids.to_pylist() == ["r2"]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=10),
    st.integers(min_value=1, max_value=5),
)
def test_every_value_reads_back_in_its_named_column(row_counts: list[int], width: int) -> None:
    rng = np.random.default_rng(len(row_counts) * 10 + width)
    names = tuple(f"c{j}" for j in range(width))
    records = [
        {
            **_record(i, 1),
            "features": rng.standard_normal((rows, width)),
            "outputs": {"predictions": rng.random(rows)},
            "columns": names,
        }
        for i, rows in enumerate(row_counts)
    ]
    table = PredictionBatch.from_records(records).to_arrow()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pq.write_table(table, Path(tmp) / "p-1.parquet")
        window = read_prediction_windows(Path(tmp), "fraud")["1"]
    matrix = np.concatenate([r["features"] for r in records])
    for j, name in enumerate(names):
        np.testing.assert_array_equal(window.features.column(name).to_numpy(), matrix[:, j])
    expected_ids = [r["request_id"] for r in records for _ in range(len(r["features"]))]
    assert window.request_ids.to_pylist() == expected_ids
    np.testing.assert_array_equal(
        window.outputs["predictions"][:, 0],
        np.concatenate([r["outputs"]["predictions"] for r in records]),
    )


def test_log_files_finds_by_bisection_what_a_stat_of_every_file_finds(tmp_path: Path) -> None:
    """Two workers' numbered files (times grow with the number) and a foreign name."""
    times = {}
    for prefix, offset in (("predictions-w0", 0.0), ("predictions-w1", 0.25)):
        for seq in range(1, 41):
            path = tmp_path / f"{prefix}-{seq:08d}.parquet"
            path.touch()
            times[path] = 1000.0 + seq + offset
    other = tmp_path / "imported.parquet"
    other.touch()
    times[other] = 1020.5
    for path, moment in times.items():
        os.utime(path, (moment, moment))
    for since in (None, 0.0, 1000.0, 1010.1, 1020.5, 1030.25, 1041.0, 2000.0):
        want = sorted((t, p.name, p) for p, t in times.items() if since is None or t >= since)
        assert log_files(tmp_path, since=since) == [p for _, _, p in want], since
