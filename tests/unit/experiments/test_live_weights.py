"""Running ``ghaf serve --workers 2`` follows its deployment record without a restart.

Real processes on a loopback port, real tokens: weights change, then an experiment
starts, then the record names a version the server never loaded; every worker (told
apart by the ``x-ghaf-worker`` pid header on fresh connections) serves the new revision
within 5 s (the new version: once it is loaded), and no request fails meanwhile.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ghaf.experiments.service import create_experiment, start_experiment, stop_experiment
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model
from ghaf.serving.deployments import get_deployment, update_deployment
from ghaf.serving.predlog import prediction_log_keys, read_prediction_log
from ghaf.serving.traffic import HOLDOUT, Assignment
from ghaf.testing.people import mint
from tests.unit.serving.conftest import N_FEATURES, Trained
from tests.unit.serving.server_processes import (
    ServerProcess,
    bearer,
    register_champion,
    second_person,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained() -> Trained:
    """A small fraud classifier, as the serving tests train it."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = make_classification(n_samples=3000, n_features=N_FEATURES, random_state=7)
    X = X.astype(np.float32)
    return Trained(HistGradientBoostingClassifier(max_iter=20, random_state=7).fit(X, y), X, y)


def _second_version(platform: Platform, trained: Any, tmp_path: Path) -> None:
    """``fraud:2``: the same estimator shape, refitted on half the data; approved."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    half = HistGradientBoostingClassifier(max_iter=5, random_state=1)
    half.fit(trained.X[::2], trained.y[::2])
    save_model(half, tmp_path / "saved2")
    version = register_model(
        platform, platform.admin(), "fraud", tmp_path / "saved2", example=trained.X[:3]
    )
    approve_model_version(platform, second_person(platform), version.ref)


def _body(rows: np.ndarray) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP32",
                        "data": rows.ravel().tolist()}]}  # fmt: skip


def _until_every_worker(
    url: str, token: str, body: dict[str, Any], revision: int, workers: int, timeout: float
) -> tuple[float, set[str]]:
    """Seconds until ``workers`` distinct workers answered at ``revision`` (fresh
    connections: the kernel spreads them over the workers)."""
    started = time.monotonic()
    seen: set[str] = set()
    while len(seen) < workers:
        assert time.monotonic() - started < timeout, f"only workers {seen} at {revision}"
        with httpx.Client(base_url=url, headers=bearer(token), timeout=10) as fresh:
            reply = fresh.post("/v2/models/fraud/infer", json=body)
        assert reply.status_code == 200, reply.text
        if int(reply.headers["x-ghaf-revision"]) == revision:
            seen.add(reply.headers["x-ghaf-worker"])
    return time.monotonic() - started, seen


class _Traffic(threading.Thread):
    """Keep-alive requests until stopped; counts what failed (bounded by ``stop``)."""

    def __init__(self, url: str, token: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.body = url, token, body
        self.done = threading.Event()
        self.ok = 0
        self.failed: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, headers=bearer(self.token), timeout=10) as client:
            while not self.done.is_set():
                try:
                    reply = client.post("/v2/models/fraud/infer", json=self.body)
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))
                    continue
                if reply.status_code == 200:
                    self.ok += 1
                else:
                    self.failed.append(f"{reply.status_code} {reply.text}")


def test_weight_and_experiment_changes_reach_every_worker(
    platform: Platform, trained: Any, tmp_path: Path
) -> None:
    register_champion(platform, trained.model, tmp_path / "saved", trained.X[:3])
    _second_version(platform, trained, tmp_path)
    token = mint(platform, "svc-scorer", ["model_server"], kind="service")
    log_dir = tmp_path / "log"
    server = ServerProcess(
        platform.settings.home,
        ("serve", "fraud:1", "fraud:2", "--workers", "2", "--log-dir", str(log_dir)),
        "/v2/health/ready",
        tmp_path / "serve.log",
    ).start(timeout=400)  # two workers loading torch et al. on a loaded 2-core machine
    body = _body(trained.X[:4])
    traffic = _Traffic(server.url, token, body)
    try:
        first = get_deployment(platform, "fraud").revision
        _until_every_worker(server.url, token, body, first, 2, timeout=300)  # both up
        traffic.start()

        # 1. weights: everything to fraud:2, live
        admin = platform.admin()
        moved = update_deployment(platform, admin, "fraud", models={"fraud:1": 0, "fraud:2": 1})
        took, pids = _until_every_worker(server.url, token, body, moved.revision, 2, 30)
        print(f"weights reached both workers in {took:.2f} s")  # the figure for the notes
        assert took < 5.0, f"the new weights took {took:.2f} s to reach workers {pids}"
        with httpx.Client(base_url=server.url, headers=bearer(token)) as client:
            versions = {client.post("/v2/models/fraud/infer", json=body).json()["model_version"]
                        for _ in range(20)}  # fmt: skip
            meta = client.get("/v2/models/fraud").json()
        assert versions == {"2"}
        assert meta["revision"] == moved.revision and meta["weights"] == {"2": 1.0}

        # 2. an experiment: sticky assignment by the x-ghaf-unit header, 50/50, holdout 20%
        variants = {"fraud:1": 1.0, "fraud:2": 1.0}
        made = create_experiment(platform, admin, "ab1", "fraud", variants, holdout=0.2)
        start_experiment(platform, admin, "ab1")
        running = get_deployment(platform, "fraud").revision
        took, pids = _until_every_worker(server.url, token, body, running, 2, 30)
        print(f"the experiment reached both workers in {took:.2f} s")
        assert took < 5.0, f"the experiment took {took:.2f} s to reach workers {pids}"
        expected = Assignment("ab1", made.salt, {"1": 1, "2": 1}, holdout=0.2, control="1")
        units = [f"customer-{i}" for i in range(60)]
        for unit in units:
            for _ in range(2):  # fresh connections: possibly another worker, the same answer
                with httpx.Client(base_url=server.url, headers=bearer(token)) as fresh:
                    reply = fresh.post(
                        "/v2/models/fraud/infer", json=body, headers={"x-ghaf-unit": unit}
                    )
                assert reply.json()["model_version"] == expected.assign(unit)[1]
        stop_experiment(platform, admin, "ab1")
        stopped = get_deployment(platform, "fraud").revision
        _until_every_worker(server.url, token, body, stopped, 2, 30)

        # 3. a version the servers never loaded (the closed loop's retrained candidate):
        # each worker downloads, verifies and warms it off its event loop, then serves it
        _second_version(platform, trained, tmp_path / "v3")
        moved = update_deployment(platform, admin, "fraud", models={"fraud:2": 0, "fraud:3": 1})
        took, pids = _until_every_worker(server.url, token, body, moved.revision, 2, 120)
        print(f"a new version loaded and served by both workers in {took:.2f} s")
        with httpx.Client(base_url=server.url, headers=bearer(token)) as client:
            versions = {client.post("/v2/models/fraud/infer", json=body).json()["model_version"]
                        for _ in range(20)}  # fmt: skip
        assert versions == {"3"}
    finally:
        traffic.done.set()
        traffic.join(30)
        output = server.stop()
    assert traffic.failed == [], traffic.failed[:5]
    assert traffic.ok > 0
    print(f"{traffic.ok} keep-alive requests during the switches, none failed")
    assert "Traceback" not in output

    logged = read_prediction_log(log_dir, keys=prediction_log_keys(platform)).to_pylist()
    assigned = [r for r in logged if r["experiment"] == "ab1" and not r["shadow"]]
    assert {r["unit"] for r in assigned} == set(units)
    for record in assigned:
        variant, version = expected.assign(record["unit"])
        assert record["variant"] == variant and record["version"] == version
    assert any(r["variant"] == HOLDOUT for r in assigned)
    assert {r["revision"] for r in assigned} == {running}
