"""Outcomes: POST /v2/feedback on a real model server, batch imports, and the join.

A label joins to its prediction by request id, or to its unit by unit id, however late
it arrives; the join is checked against a plain-Python oracle with hypothesis.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghaf.data import write_dataset
from ghaf.errors import InvalidInputError
from ghaf.experiments.analysis import unit_table
from ghaf.experiments.outcomes import import_outcomes
from ghaf.platform import Platform
from ghaf.serving.outcomes import read_outcomes
from ghaf.serving.predlog import PredictionBatch
from ghaf.serving.server import BackgroundServer, ServeConfig, build_app, model_entry
from ghaf.serving.traffic import HOLDOUT
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import bearer, register_champion

# The join ------------------------------------------------------------------------

_units = st.sampled_from([f"u{i}" for i in range(6)])
_prediction = st.tuples(_units, st.sampled_from(["1", "2", HOLDOUT]), st.booleans())
_outcome = st.tuples(
    st.one_of(st.none(), st.integers(0, 29)),  # a request's index, or None: by unit
    st.one_of(st.none(), _units),
    st.floats(-10, 10, allow_nan=False),
)


def _log(predictions: list[tuple[str, str, bool]]) -> pa.Table:
    records = [
        {"request_id": f"r{i}", "ts": float(i), "model": "fraud", "version": variant,
         "variant": variant, "latency_ms": float(i % 7), "features": np.zeros((1, 1)),
         "outputs": {}, "unit": unit, "experiment": "ab", "shadow": shadow}
        for i, (unit, variant, shadow) in enumerate(predictions)
    ]  # fmt: skip
    return PredictionBatch.from_records(records).to_arrow()


def _oracle(
    predictions: list[tuple[str, str, bool]], outcomes: list[tuple[int | None, str | None, float]]
) -> dict[str, tuple[str, float | None, float]]:
    live = [
        (i, u, v) for i, (u, v, shadow) in enumerate(predictions) if not shadow and v != HOLDOUT
    ]
    first: dict[str, str] = {}
    latency: dict[str, list[float]] = defaultdict(list)
    by_request = {}
    for i, unit, variant in live:
        first.setdefault(unit, f"fraud:{variant}")
        latency[unit].append(float(i % 7))
        by_request[f"r{i}"] = unit
    values: dict[str, list[float]] = defaultdict(list)
    for request, unit, value in outcomes:
        owner = unit if unit is not None else by_request.get(f"r{request}")
        if owner is not None:
            values[owner].append(value)
    return {
        unit: (variant, float(np.mean(values[unit])) if values[unit] else None,
               float(np.mean(latency[unit])))
        for unit, variant in first.items()
    }  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    predictions=st.lists(_prediction, min_size=1, max_size=30),
    outcomes=st.lists(_outcome, max_size=30),
)
def test_outcomes_join_their_units_by_request_or_unit_id(
    predictions: list[tuple[str, str, bool]], outcomes: list[tuple[int | None, str | None, float]]
) -> None:
    kept = [(r, u, v) for r, u, v in outcomes if r is not None or u is not None]
    labels = pa.table(
        {
            "request_id": pa.array(
                [None if r is None else f"r{r}" for r, u, _ in kept], pa.string()
            ),
            "unit": pa.array([u if r is None else None for r, u, _ in kept], pa.string()),
            "value": pa.array([v for _, _, v in kept], pa.float64()),
        }
    )
    # an outcome by request id names no unit; by unit, no request
    oracle = _oracle(predictions, [(r, u if r is None else None, v) for r, u, v in kept])
    got = unit_table(_log(predictions), labels, "ab").to_pylist()
    assert {row["unit"] for row in got} == set(oracle)
    for row in got:
        variant, goal, latency = oracle[row["unit"]]
        assert row["variant"] == variant
        assert row["latency_ms"] == pytest.approx(latency)
        assert (row["goal"] is None) == (goal is None)
        if goal is not None:
            assert row["goal"] == pytest.approx(goal)


# The endpoint ----------------------------------------------------------------------


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Any:
    """A real model server (authenticated) serving fraud@champion on a loopback port."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from ghaf.serving.deployments import record_deployment
    from ghaf.serving.models import resolve_model

    X, y = make_classification(n_samples=200, n_features=4, random_state=3)
    X = X.astype(np.float32)
    register_champion(platform, LogisticRegression().fit(X, y), tmp_path / "m", X[:3])
    record_deployment(platform, platform.admin(), "fraud", ["fraud:1"])
    spec = resolve_model(platform, "fraud:1", tmp_path, serving=True)
    config = ServeConfig(models=[model_entry(spec)], watch={"fraud": "fraud"})
    server = BackgroundServer(build_app(config, platform)).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_feedback_is_stored_for_a_scorer_and_refused_otherwise(
    platform: Platform, served: str
) -> None:
    scorer = mint(platform, "svc-app", ["model_server"], kind="service")
    viewer = mint(platform, "vera", ["viewer"])
    late = (datetime.now(UTC) - timedelta(days=9)).isoformat()
    body = {"model": "fraud", "outcomes": [
        {"request_id": "req-1", "outcome": 1},
        {"unit": "customer-7", "outcome": 0.0, "timestamp": late, "metric": "conversion"},
    ]}  # fmt: skip
    with httpx.Client(base_url=served, timeout=30) as client:
        assert client.post("/v2/feedback", json=body).status_code == 401
        denied = client.post("/v2/feedback", json=body, headers=bearer(viewer))
        assert denied.status_code == 403
        bad = dict(body, outcomes=[{"request_id": "r", "outcome": "yes"}])
        refused = client.post("/v2/feedback", json=bad, headers=bearer(scorer))
        assert refused.status_code == 400 and "outcomes[1]: outcome" in refused.text
        none = client.post("/v2/feedback", json={"model": "fraud", "outcome": 1},
                           headers=bearer(scorer))  # fmt: skip
        assert none.status_code == 400 and "neither request_id nor unit" in none.text
        assert read_outcomes(platform, "fraud").num_rows == 0  # nothing stored by refusals
        stored = client.post("/v2/feedback", json=body, headers=bearer(scorer))
        assert stored.status_code == 201 and stored.json() == {"stored": 2}
        one = client.post("/v2/feedback", json={"model": "fraud", "unit": "c9", "outcome": 1},
                          headers=bearer(scorer))  # fmt: skip
        assert one.status_code == 201
    rows = read_outcomes(platform, "fraud").to_pylist()
    assert [(r["request_id"], r["unit"], r["metric"], r["value"]) for r in rows] == [
        ("req-1", None, "outcome", 1.0),
        (None, "customer-7", "conversion", 0.0),
        (None, "c9", "outcome", 1.0),
    ]
    assert rows[1]["ts"] == datetime.fromisoformat(late)  # a late label keeps its own time


def test_labels_import_from_a_dataset_version(platform: Platform) -> None:
    admin = platform.admin()
    labels = pa.table({"request_id": ["a", None], "unit": [None, "u2"], "outcome": [1, 0]})
    version = write_dataset(platform, admin, "labels", labels, source="test")
    stored = import_outcomes(platform, admin, "fraud", f"labels@{version.version}")
    assert stored == 2
    rows = read_outcomes(platform, "fraud").to_pylist()
    assert [(r["request_id"], r["unit"], r["value"]) for r in rows] == [
        ("a", None, 1.0),
        (None, "u2", 0.0),
    ]
    bad = write_dataset(platform, admin, "labels", pa.table({"unit": ["u"]}), source="test")
    with pytest.raises(InvalidInputError, match="no outcome column"):
        import_outcomes(platform, admin, "fraud", f"labels:{bad.version}")
    assert read_outcomes(platform, "fraud").num_rows == 2
