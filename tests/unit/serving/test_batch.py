"""Batch scoring: streamed Parquet/CSV scoring equals in-memory predict_proba; CLI doors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.serving.base import ModelSpec
from ghaf.serving.batch import read_batches, score_file
from ghaf.serving.outputs import score_to_target
from ghaf.serving.runtimes import load_runtime


def _table(x: np.ndarray) -> pa.Table:
    columns = {f"f{i}": x[:, i] for i in range(x.shape[1])}
    return pa.table({"id": np.arange(len(x)), **columns})


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_scoring_equals_in_memory(
    tmp_path: Path, hgb_spec: ModelSpec, trained: Any, suffix: str
) -> None:
    source = tmp_path / f"in{suffix}"
    table = _table(trained.X)
    if suffix == ".parquet":
        pq.write_table(table, source, row_group_size=500)
    else:
        pacsv.write_csv(table, source)
    runtime = load_runtime("skops", hgb_spec.path)
    stats = score_file(runtime, source, tmp_path / "out.parquet", batch_rows=700, progress=False)
    out = pq.read_table(tmp_path / "out.parquet")
    assert stats.rows == len(trained.X) == out.num_rows
    assert stats.batches > 1 or suffix == ".csv"  # CSV blocks are 8 MiB
    assert out.column_names == ["id", "probabilities_0", "probabilities_1"]
    assert out["id"].to_pylist() == list(range(len(trained.X)))  # order kept
    want = trained.model.predict_proba(trained.X)[:, 1]
    np.testing.assert_allclose(out["probabilities_1"].to_numpy(), want, rtol=1e-6)
    assert not list(tmp_path.glob("*.partial"))


def test_reading_parquet_holds_a_few_row_groups_not_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400_000, 20), dtype=np.float32)
    source = tmp_path / "big.parquet"
    pq.write_table(_table(x), source, row_group_size=10_000)  # 40 groups of ~1 MiB
    del x
    batches, total = read_batches(source, batch_rows=10_000)
    before = pa.total_allocated_bytes()
    peak = rows = 0
    for batch in batches:
        rows += batch.num_rows
        peak = max(peak, pa.total_allocated_bytes() - before)
    assert rows == total == 400_000
    assert peak < 8 << 20, f"reader held {peak >> 20} MiB of a 36 MiB file"


def test_missing_column_is_named_and_nothing_written(
    tmp_path: Path, hgb_spec: ModelSpec, trained: Any
) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(_table(trained.X).drop(["f3"]), source)
    runtime = load_runtime("skops", hgb_spec.path)
    with pytest.raises(InvalidInputError, match="no column 'f3'"):
        score_file(runtime, source, tmp_path / "out.parquet", progress=False)
    assert not (tmp_path / "out.parquet").exists()
    assert not list(tmp_path.glob("*.partial"))


def test_refused_model_scores_nothing(
    platform: Platform, tmp_path: Path, hgb_spec: ModelSpec, trained: Any
) -> None:
    from ghaf.errors import IntegrityError

    source = tmp_path / "in.parquet"
    pq.write_table(_table(trained.X[:10]), source)
    (hgb_spec.path / "model.skops").write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="was refused"):
        target = str(tmp_path / "o.parquet")
        score_to_target(platform, platform.admin(), hgb_spec, source, target, progress=False)
    assert not (tmp_path / "o.parquet").exists()


def _ghaf(*args: str, home: Path, python: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *python, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_predict(platform: Platform, tmp_path: Path, hgb_spec: ModelSpec, trained: Any) -> None:
    home = platform.settings.home
    source = tmp_path / "in.parquet"
    pq.write_table(_table(trained.X[:100]), source)
    out = tmp_path / "scored.parquet"
    done = _ghaf(
        "predict", str(hgb_spec.path), str(source), str(out), "--flavor", "skops", home=home,
        python=("-X", "importtime"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert pq.read_table(out).num_rows == 100
    imported = {line.split("|")[2].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "sklearn.ensemble" in imported  # the probe sees the model's imports
    # skops' scan of every scikit-learn module (which pulls in PyTorch) is skipped.
    assert not imported & {
        "torch",
        "sklearn.utils._testing",
        "sklearn.externals.array_api_compat.torch",
    }
    missing, target = str(tmp_path / "nope.parquet"), str(tmp_path / "x.parquet")
    bad = _ghaf("predict", str(hgb_spec.path), missing, target, "--flavor", "skops", home=home)
    assert bad.returncode == 4 and "does not exist" in bad.stderr
    assert not (tmp_path / "x.parquet").exists()
    no_flavor = _ghaf("serve", str(hgb_spec.path), home=home)
    assert no_flavor.returncode == 3 and "--flavor" in no_flavor.stderr


def test_scoring_into_a_dataset_records_a_version_with_the_model_as_input(
    platform: Platform, tmp_path: Path, hgb_spec: ModelSpec, trained: Any
) -> None:
    from ghaf.data import get_dataset, read_dataset

    source = tmp_path / "in.parquet"
    pq.write_table(_table(trained.X), source)
    stats = score_to_target(
        platform, platform.admin(), hgb_spec, source, "dataset:scored", progress=False
    )
    version = get_dataset(platform, "scored")
    assert stats.rows == version.num_rows == len(trained.X)
    assert version.inputs == ("model:fraud:1",)
    out = read_dataset(platform, "scored")
    want = trained.model.predict_proba(trained.X)[:, 1]
    np.testing.assert_allclose(out["probabilities_1"].to_numpy(), want, rtol=1e-6)
