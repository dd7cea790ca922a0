"""Data-parallel PyTorch training on Ray Train (DDP over gloo) on the shared loopback
cluster (a head and a worker node, one CPU each, so two workers use both nodes): two
workers reach the validation metric of one within a stated tolerance, and the run in the
caller's home is one run written by the driver (params, per-epoch loss, the model)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ghaf.errors import InvalidInputError
from ghaf.home import init_home
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


def _data(rows: int = 3000) -> TrainData:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 8)).astype(np.float32)
    logit = x[:, 0] + 0.5 * x[:, 1] - x[:, 2] * x[:, 3]
    y = (logit + rng.normal(scale=0.3, size=rows) > 0).astype(np.int64)
    cut = rows * 4 // 5
    return TrainData(x[:cut], y[:cut], x[cut:], y[cut:])


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with init_home(load_settings(home=tmp_path / "home")) as opened:
        yield opened


def test_two_ray_workers_match_one(
    ray_cluster: RayCluster, platform: Platform, tmp_path: Path
) -> None:
    data = _data()
    params = {"hidden": [32], "epochs": EPOCHS, "batch_size": 128, "lr": 3e-3}

    def spec(workers: int) -> TrainSpec:
        return TrainSpec(
            "pytorch", params=params, seed=3, device="cpu", workers=workers, log_model=True,
            experiment="ddp", name=f"w{workers}",
        )  # fmt: skip

    one = train(spec(1), data, platform=platform)
    two = train(spec(2), data, platform=platform, ray_address=ray_cluster.address)
    # The driver joined the cluster; both nodes were up for the two workers.
    assert len(ray_cluster.wait_for_nodes(2)) == 2

    print(f"samples/s: 1 worker {one.samples_per_s:.0f}, 2 Ray workers {two.samples_per_s:.0f}")
    assert one.samples_per_s > 0 and two.samples_per_s > 0
    assert one.metrics["valid_auc"] > 0.9, one.metrics
    assert abs(two.metrics["valid_auc"] - one.metrics["valid_auc"]) <= AUC_TOLERANCE, (
        one.metrics,
        two.metrics,
    )

    # One run in the caller's home, written by the driver: params, rank 0's per-epoch loss.
    runs = search_runs(platform, "", experiments=["ddp"]).runs
    assert sorted(r.run_id for r in runs) == sorted([one.run_id, two.run_id])
    run = get_run(platform, two.run_id)
    assert run.status == "finished"
    assert run.params["workers"] == "2" and run.params["model.epochs"] == str(EPOCHS)
    assert run.tags["ghaf.distributed"] == "ray-train"
    losses = get_metric_history(platform, two.run_id, "train_loss")
    assert [p.step for p in losses] == list(range(EPOCHS))
    assert losses[-1].value < losses[0].value
    assert run.metrics["valid_auc"] == pytest.approx(two.metrics["valid_auc"])
    assert run.metrics["samples_per_s"] == pytest.approx(two.samples_per_s)

    # The logged model loads from the home and predicts what the returned model predicts.
    model_dir = download_artifacts(platform, two.run_id, "model", tmp_path / "dl")
    loaded = load_model_dir(model_dir)
    expected = two.predict(data.x_valid)  # type: ignore[arg-type]
    np.testing.assert_allclose(loaded.predict_proba(data.x_valid)[:, 1], expected, rtol=1e-5)
    # Ray Train's checkpoints lived in the home's scratch and are gone.
    assert not list((platform.settings.home / "tmp").glob("ray-train-*"))

    with pytest.raises(InvalidInputError, match="workers"):
        TrainSpec("lightgbm", workers=2)
