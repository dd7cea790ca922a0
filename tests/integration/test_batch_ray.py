"""Batch scoring on Ray Data (``ghaf predict ... --on ray://HOST:PORT``) against the local path,
on the shared loopback cluster of ``ray_cluster.py`` (a head and a worker node, one CPU each):
the same scores in the same order, the same dataset version and lineage, both nodes scoring,
each actor verifying the model itself, and a bad ``--on`` refused in one line."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.lineage.graph import edges_of
from ghaf.platform import Platform
from ghaf.serving.base import ModelSpec
from tests.integration.ray_cluster import GROUP, RayCluster

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.xdist_group(GROUP),
    # Ray's driver leaves a helper Popen to be reaped at exit: third-party noise.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ROWS = 6_000


@pytest.fixture(scope="module")
def driver(ray_cluster: RayCluster) -> Iterator[Any]:
    """This process's Ray driver on the shared cluster; disconnected at the module's end."""
    from ghaf.pipelines.ray import connect_ray

    ray = connect_ray(ray_cluster.address)
    ray_cluster.wait_for_nodes(2)
    try:
        yield ray
    finally:
        ray.shutdown()
        gc.collect()  # reap the driver's leftover Popen here, where its warning is ignored


@pytest.fixture
def signed_model(platform: Platform, tmp_path: Path) -> tuple[ModelSpec, Path]:
    """A W4-like model (HistGradientBoosting on 20 features), signed by the home's key."""
    import skops.io as sio
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ghaf.security.signing import sign_model_dir
    from ghaf.serving.models import local_model

    x, y = make_classification(n_samples=2_000, n_features=20, random_state=7)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=7).fit(x, y)
    directory = tmp_path / "hgb"
    directory.mkdir()
    sio.dump(model, directory / "model.skops")
    sign_model_dir(platform.settings, directory)
    return local_model(platform.settings, directory, "skops"), directory


def _input(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((ROWS, 20), dtype=np.float32)
    table = pa.table({"id": np.arange(ROWS), **{f"f{i}": x[:, i] for i in range(20)}})
    source = tmp_path / "in.parquet"
    pq.write_table(table, source, row_group_size=500)  # 12 row groups: units for both nodes
    return source


def _ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_predict_on_ray_writes_the_local_paths_version(
    driver: Any,
    ray_cluster: RayCluster,
    platform: Platform,
    tmp_path: Path,
    signed_model: tuple[ModelSpec, Path],
) -> None:
    from ghaf.data import get_dataset, read_dataset
    from ghaf.serving.outputs import score_to_target

    spec, directory = signed_model
    source = _input(tmp_path)
    home = platform.settings.home
    score_to_target(platform, platform.admin(), spec, source, "dataset:local", progress=False)

    on = f"ray://{ray_cluster.address}"
    args = ("predict", str(directory), str(source), "dataset:onray", "--flavor", "skops")
    done = _ghaf(home, *args, "--on", on)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"scored {ROWS:,} rows into dataset:onray" in done.stdout

    local, remote = get_dataset(platform, "local"), get_dataset(platform, "onray")
    assert remote.num_rows == local.num_rows == ROWS
    assert remote.schema == local.schema
    assert remote.inputs == local.inputs == ("model:hgb:1",)
    assert remote.column_tags == local.column_tags and remote.residency == local.residency
    assert [(e.src, e.relation) for e in edges_of(platform, remote.node)] == [
        (e.src, e.relation) for e in edges_of(platform, local.node)
    ]
    want, got = read_dataset(platform, "local"), read_dataset(platform, "onray")
    assert got["id"].to_pylist() == list(range(ROWS))  # the input's order
    assert got.equals(want)  # the same scores, bit for bit

    bad = _ghaf(home, *args, "--on", "spark://127.0.0.1:7077")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    headline, *hint = bad.stderr.strip().splitlines()  # the CLI's error line and its hint
    assert headline.startswith("error: --on 'spark://") and len(hint) <= 1, bad.stderr


def test_both_nodes_score_and_each_verifies_the_model(
    driver: Any,
    ray_cluster: RayCluster,
    platform: Platform,
    tmp_path: Path,
    signed_model: tuple[ModelSpec, Path],
) -> None:
    from ghaf.serving.batch_ray import RayScorer, ray_target
    from ghaf.serving.models import load_served

    spec, _ = signed_model
    source = _input(tmp_path)
    scorer = RayScorer(spec, platform.settings, ray_cluster.address)
    batches, total = scorer(source, 1_000)
    scored = pa.Table.from_batches(list(batches))
    assert total == scored.num_rows == ROWS
    nodes = {str(n["NodeID"]) for n in ray_cluster.wait_for_nodes(2)}
    assert scorer.nodes == nodes, "both nodes should have scored a share"
    runtime = load_served(spec, platform=platform).runtime
    assert runtime is not None
    want = runtime.predict(pq.read_table(source).drop(["id"]).to_pandas().to_numpy())
    np.testing.assert_array_equal(scored["probabilities_1"].to_numpy(), want["probabilities"][:, 1])

    # What the actors receive, changed after the driver verified it: every actor refuses it.
    tampered = dict(scorer.bundle.files, **{"model.skops": b"tampered"})
    scorer.bundle = replace(scorer.bundle, files=tampered)
    with pytest.raises(IntegrityError, match="signature"):
        list(scorer(source, 1_000)[0])

    with pytest.raises(InvalidInputError, match="--on"):
        ray_target("ray://127.0.0.1", platform.settings)
    exposed = ray_cluster.listening_beyond_loopback()
    assert not exposed, f"Ray listens beyond loopback on {exposed}"
