"""Shadow comparison per window: agreement, KS distance (scipy's), latency of each side."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ghaf.experiments.shadow import compare_shadows
from ghaf.serving.predlog import PredictionBatch


def _record(i: int, version: str, p: float, latency: float, shadow: bool) -> dict[str, Any]:
    return {"request_id": f"r{i}", "ts": 1_000.0 * (i // 50) * 3600, "model": "fraud",
            "version": version, "variant": "shadow" if shadow else version,
            "latency_ms": latency, "features": np.ones((1, 2)),
            "outputs": {"probabilities": np.array([[1 - p, p]])}, "shadow": shadow}  # fmt: skip


def test_shadow_against_live_per_window() -> None:
    rng = np.random.default_rng(4)
    live_p = rng.uniform(size=100)
    shadow_p = np.clip(live_p + rng.normal(0, 0.2, size=100), 0, 1)
    records = [_record(i, "1", live_p[i], 2.0 + i % 3, False) for i in range(100)]
    records += [_record(i, "2", shadow_p[i], 5.0 + i % 4, True) for i in range(100)]
    records.append(_record(999, "2", 0.5, 1.0, True))  # no live answer: not a pair
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["version"], []).append(r)
    import pyarrow as pa

    log = pa.concat_tables([PredictionBatch.from_records(g).to_arrow() for g in groups.values()])
    report = compare_shadows(log, "fraud")
    assert [(r["shadow"], r["window_start_s"], r["pairs"]) for r in report] == [
        ("2", 0.0, 50),
        ("2", 3600.0, 50),
    ]
    for w, row in enumerate(report):
        sl = slice(50 * w, 50 * (w + 1))
        agree = np.mean((live_p[sl] > 0.5) == (shadow_p[sl] > 0.5))
        assert row["agreement"] == agree
        want = stats.ks_2samp(live_p[sl], shadow_p[sl])
        assert abs(row["ks_statistic"] - want.statistic) < 1e-12
        assert abs(row["ks_pvalue"] - want.pvalue) < 1e-9
        live_ms = np.array([2.0 + i % 3 for i in range(100)])[sl]
        assert row["live_latency_ms"]["mean"] == live_ms.mean()
        assert row["shadow_latency_ms"]["p99"] == np.quantile(
            np.array([5.0 + i % 4 for i in range(100)])[sl], 0.99
        )


def test_a_served_shadow_is_logged_and_never_returned(platform: Any, tmp_path: Any) -> None:
    """A real (authenticated) model server with fraud:2 as the shadow of fraud:1."""
    import time

    import httpx
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from ghaf.serving.models import resolve_model
    from ghaf.serving.predlog import prediction_log_keys, read_prediction_log
    from ghaf.serving.server import BackgroundServer, ServeConfig, build_app, model_entry
    from ghaf.testing.people import mint
    from tests.unit.experiments.test_live_weights import Trained, _second_version
    from tests.unit.serving.server_processes import bearer, register_champion

    X, y = make_classification(n_samples=300, n_features=8, random_state=3)
    X = X.astype(np.float32)
    trained = Trained(LogisticRegression().fit(X, y), X, y)
    register_champion(platform, trained.model, tmp_path / "m", X[:3])
    _second_version(platform, trained, tmp_path)
    live, shadow = (
        resolve_model(platform, r, tmp_path, serving=True) for r in ("fraud:1", "fraud:2")
    )
    config = ServeConfig(
        models=[model_entry(live), model_entry(shadow, shadow=True)], log_dir=str(tmp_path / "log")
    )
    app = build_app(config, platform)
    app.prediction_log.flush_every = 0.05
    token = mint(platform, "svc-app", ["model_server"], kind="service")
    body = {"inputs": [{"name": "input", "shape": [2, 8], "datatype": "FP32",
                        "data": X[:2].ravel().tolist()}]}  # fmt: skip
    server = BackgroundServer(app).start()
    try:
        with httpx.Client(base_url=server.url, headers=bearer(token), timeout=30) as client:
            for i in range(20):
                reply = client.post("/v2/models/fraud/infer", json={**body, "id": f"q{i}"})
                assert reply.status_code == 200
                got = np.reshape(reply.json()["outputs"][0]["data"], (2, 2))
                assert reply.json()["model_version"] == "1"  # the shadow never answers
                np.testing.assert_allclose(got, trained.model.predict_proba(X[:2]))
    finally:
        server.stop()
    deadline = time.monotonic() + 30
    while True:  # the log drains off the response path: wait for both sides, bounded
        log = read_prediction_log(tmp_path / "log", keys=prediction_log_keys(platform))
        if log.num_rows >= 40 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    rows = log.to_pylist()
    shadows = [r for r in rows if r["shadow"]]
    assert {r["request_id"] for r in shadows} == {f"q{i}" for i in range(20)}
    assert {(r["version"], r["variant"]) for r in shadows} == {("2", "shadow")}
    report = compare_shadows(log, "fraud", window_s=1e9)
    assert [(r["shadow"], r["pairs"]) for r in report] == [("2", 20)]
