"""Data-parallel PyTorch training on Ray Train (DDP over gloo) on the shared loopback
cluster (a head and a worker node, one CPU each, so two workers use both nodes), through
``ghaf train --workers 2 --on ADDRESS``: two workers reach the validation metric of one
(in-process) within a stated tolerance, and the run in the caller's home is one run
written by the driver (params, per-epoch loss, the dataset as input, the model)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from ghaf.data import ingest, read_dataset
from ghaf.errors import InvalidInputError
from ghaf.home import init_home
from ghaf.lineage.graph import upstream
from ghaf.models.flavors import load_model_dir
from ghaf.platform import Platform
from ghaf.settings import load_settings
from ghaf.tracking import download_artifacts, get_metric_history, get_run, search_runs
from ghaf.training import TrainData, TrainSpec, train
from tests.integration.ray_cluster import GROUP, RayCluster

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.xdist_group(GROUP),
    # Ray's driver leaves a helper Popen to be reaped at exit: third-party noise.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

AUC_TOLERANCE = 0.02
"""Two workers shuffle their shards with their own generators, so the model differs from
one worker's in the last digits: the same data reaches the same AUC within this."""

EPOCHS = 6


@pytest.fixture(scope="module", autouse=True)
def _disconnect_at_end() -> Iterator[None]:
    yield
    import ray

    ray.shutdown()
    gc.collect()  # the driver's leftover Popen objects, here where their warning is ignored


def _table(rows: int = 3000) -> pa.Table:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 8)).astype(np.float32)
    logit = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3]
    y = (logit + rng.normal(scale=0.3, size=rows) > 0).astype(np.int64)
    return pa.table({**{f"f{i}": x[:, i] for i in range(8)}, "label": y})


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with init_home(load_settings(home=tmp_path / "home")) as opened:
        yield opened


def test_two_ray_workers_match_one(
    ray_cluster: RayCluster, platform: Platform, tmp_path: Path
) -> None:
    from ghaf.pipelines.ray import connect_ray

    pq.write_table(_table(), tmp_path / "rows.parquet")
    version = ingest(platform, platform.admin(), tmp_path / "rows.parquet", "rows")
    params = {"hidden": [32], "epochs": EPOCHS, "batch_size": 128, "lr": 3e-3}
    data = TrainData.from_table(read_dataset(platform, version.ref), "label", seed=3)
    # Both nodes are up before the two workers ask for a CPU each.
    connect_ray(ray_cluster.address)
    assert len(ray_cluster.wait_for_nodes(2)) == 2

    # One worker, in this process: the single-process reference.
    spec = TrainSpec("pytorch", params=params, seed=3, device="cpu", experiment="ddp")
    one = train(spec, data, platform=platform)
    # Two workers through the door a user has: its own driver process joins the cluster.
    door = subprocess.run(
        [
            sys.executable, "-m", "ghaf", "--home", str(platform.settings.home), "train",
            version.ref, "--target", "label", "--framework", "pytorch",
            "--params", json.dumps(params), "--seed", "3", "--device", "cpu",
            "--workers", "2", "--on", f"ray://{ray_cluster.address}", "--experiment", "ddp",
            "--output", "json",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert door.returncode == 0, door.stderr[-3000:]
    two = json.loads(door.stdout)
    assert two["workers"] == 2 and two["device"] == "cpu"

    print(f"samples/s: 1 worker {one.samples_per_s:.0f}, 2 Ray workers {two['samples_per_s']:.0f}")
    assert one.samples_per_s > 0 and two["samples_per_s"] > 0
    assert one.metrics["valid_auc"] > 0.9, one.metrics
    assert abs(two["metrics"]["valid_auc"] - one.metrics["valid_auc"]) <= AUC_TOLERANCE, (
        one.metrics,
        two["metrics"],
    )

    # One run in the caller's home, written by the driver: params, rank 0's per-epoch loss,
    # the dataset version as its input.
    runs = search_runs(platform, "", experiments=["ddp"]).runs
    assert sorted(r.run_id for r in runs) == sorted([one.run_id, two["run_id"]])
    run = get_run(platform, two["run_id"])
    assert run.status == "finished"
    assert run.params["workers"] == "2" and run.params["model.epochs"] == str(EPOCHS)
    assert run.params["rows"] == str(len(data.x))
    assert run.tags["ghaf.distributed"] == "ray-train"
    losses = get_metric_history(platform, two["run_id"], "train_loss")
    assert [p.step for p in losses] == list(range(EPOCHS))
    assert losses[-1].value < losses[0].value
    assert run.metrics["valid_auc"] == pytest.approx(two["metrics"]["valid_auc"])
    assert run.metrics["samples_per_s"] == pytest.approx(two["samples_per_s"])
    assert version.node in upstream(platform, f"run:{two['run_id']}")

    # The logged model loads from the home and scores the validation rows as reported.
    assert two["model_source"] == f"run:{two['run_id']}/model"
    model_dir = download_artifacts(platform, two["run_id"], "model", tmp_path / "dl")
    scores = load_model_dir(model_dir).predict_proba(data.x_valid)[:, 1]
    assert roc_auc_score(data.y_valid, scores) == pytest.approx(two["metrics"]["valid_auc"])
    # Ray Train's checkpoints lived in the home's scratch and are gone.
    assert not list((platform.settings.home / "tmp").glob("ray-train-*"))

    with pytest.raises(InvalidInputError, match="workers"):
        TrainSpec("lightgbm", workers=2)
    # A bad param is refused by name before any worker starts.
    bad = TrainSpec("pytorch", params={"hidden": ["wide"]}, device="cpu", workers=2)
    with pytest.raises(InvalidInputError, match="hidden"):
        train(bad, data, platform=platform, ray_address=ray_cluster.address)


def test_xgboost_on_two_ray_workers_matches_one(
    ray_cluster: RayCluster, platform: Platform
) -> None:
    from ghaf.pipelines.ray import connect_ray

    data = TrainData.from_table(_table(2000), "label", seed=1)
    connect_ray(ray_cluster.address)
    assert len(ray_cluster.wait_for_nodes(2)) == 2
    params = {"n_estimators": 20, "max_depth": 4}
    spec = TrainSpec("xgboost", params=params, seed=1, device="cpu", experiment="xgb")
    one = train(spec, data, platform=platform)
    two = train(replace(spec, workers=2), data, platform=platform, ray_address=ray_cluster.address)
    print(f"xgboost samples/s: 1 worker {one.samples_per_s:.0f}, 2 workers {two.samples_per_s:.0f}")
    assert abs(two.metrics["valid_auc"] - one.metrics["valid_auc"]) <= AUC_TOLERANCE, (
        one.metrics,
        two.metrics,
    )
    # The same kind of model as single-process training returns, and one run per training.
    assert type(two.model) is type(one.model)
    run = get_run(platform, two.run_id)
    assert run.params["workers"] == "2" and run.tags["ghaf.distributed"] == "ray-train"
    rounds = get_metric_history(platform, two.run_id, "train_loss")
    assert [p.step for p in rounds] == list(range(20))
    assert len(search_runs(platform, "", experiments=["xgb"]).runs) == 2
