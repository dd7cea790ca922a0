"""Entity-id requests: features from a real materialized SQLite online store, per batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from ghaf.features.materialize import materialize
from ghaf.features.online import get_online_features
from ghaf.features.registry import apply_definitions
from ghaf.models import save_model
from ghaf.models.base import schema_to_json
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model
from ghaf.serving.models import resolve_model
from ghaf.serving.records import FeatureJoiner, OnlineStoreLookup
from ghaf.serving.server import ServeConfig, background_server, build_app, model_entry
from ghaf.testing.online_store import T0, make_source, sample_definitions
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import bearer, second_person

COLUMNS = ("amount", "spend", "count")
REFS = ["customer_stats:spend", "customer_stats:count"]


@pytest.fixture
def served_with_store(platform: Platform, tmp_path: Path) -> Any:
    """A model over (amount, spend, count), registered; customer_stats materialized to SQLite."""
    from datetime import timedelta

    source = make_source(tmp_path / "stats.parquet")
    apply_definitions(platform, platform.admin(), sample_definitions(source, ttl_days=10_000))  # type: ignore[arg-type]
    materialize(platform, platform.admin(), until=T0 + timedelta(days=20))
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.random(400) * 50, rng.random(400) * 100, rng.integers(0, 10, 400)])
    y = (x[:, 0] + x[:, 1] > 75).astype(int)
    model = HistGradientBoostingClassifier(max_iter=10, random_state=1).fit(x, y)
    save_model(model, tmp_path / "saved")
    schema = pa.schema([pa.field(c, pa.float64()) for c in COLUMNS])
    signature = {"inputs": schema_to_json(schema)}
    register_model(platform, platform.admin(), "risk", tmp_path / "saved", signature=signature)
    approve_model_version(platform, second_person(platform), "risk:1")
    spec = resolve_model(platform, "risk:1", tmp_path / "served")
    features = {"entity_key": "customer_id", "refs": REFS}
    app = build_app(ServeConfig([model_entry(spec, features=features)]), platform)
    return app, model, mint(platform, "svc-scorer", ["model_server"], kind="service")


def test_entity_ids_get_online_features_per_batch(
    platform: Platform, served_with_store: Any
) -> None:
    app, model, token = served_with_store
    ids = [1, 2, 3, 4, 5, 999]  # 999 is unknown: its features are null (NaN), still scored
    amounts = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    records = [{"customer_id": c, "amount": a} for c, a in zip(ids, amounts, strict=True)]
    online = get_online_features(platform, {"customer_id": ids}, REFS).columns
    matrix = np.array([amounts, online["spend"], online["count"]], dtype=np.float64).T
    assert np.isnan(matrix[-1, 1]) and not np.isnan(matrix[:-1]).any()
    want = model.predict_proba(matrix)
    with background_server(app) as url:
        reply = httpx.post(f"{url}/predict", json={"records": records}, headers=bearer(token))
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(reply.json()["outputs"]["probabilities"], want, rtol=1e-6)

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, headers=bearer(token)) as client:
                return await asyncio.gather(
                    *(client.post("/predict", json=[record]) for record in records * 10)
                )

        joiner = app.deployments["risk"].joiner
        before = joiner.lookups
        replies = asyncio.run(burst())
        assert [r.status_code for r in replies] == [200] * 60
        got = np.array([r.json()["outputs"]["probabilities"][0] for r in replies])
        np.testing.assert_allclose(got, np.tile(want, (10, 1)), rtol=1e-6)
        assert 0 < joiner.lookups - before <= 60  # at most one per request...
        missing = httpx.post(f"{url}/predict", json=[{"customer_id": 1}], headers=bearer(token))
        assert missing.status_code == 400 and "amount" in missing.json()["error"]


class _SlowCounting:
    """A real online-store lookup that records each call and holds the first until released."""

    def __init__(self, inner: OnlineStoreLookup) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.lock = threading.Lock()
        self.entered = threading.Event()
        self.release = threading.Event()

    def lookup(self, entity_ids: Sequence[Any], columns: Sequence[str]) -> dict[str, list[Any]]:
        with self.lock:
            self.calls.append(len(entity_ids))
            first = len(self.calls) == 1
        if first:
            self.entered.set()
            self.release.wait(300)  # bounded, so a broken test still ends
        return self.inner.lookup(entity_ids, columns)


def test_joiner_makes_one_lookup_for_concurrent_requests(
    platform: Platform, served_with_store: Any
) -> None:
    counting = _SlowCounting(OnlineStoreLookup(platform, "customer_id", REFS))
    joiner = FeatureJoiner(counting)

    async def many() -> list[dict[str, list[Any]]]:
        first = asyncio.ensure_future(joiner.fetch([1], ["spend"]))
        entered = asyncio.get_running_loop().run_in_executor(None, counting.entered.wait, 60)
        assert await entered  # the first lookup is running (held); these 40 queue
        rest = [
            asyncio.ensure_future(joiner.fetch([i % 50 + 1, 7], ["spend", "count"]))
            for i in range(40)
        ]
        await asyncio.sleep(0)  # each runs up to its wait: queued behind the first lookup
        assert joiner.requests == 41
        counting.release.set()
        return [await first, *await asyncio.gather(*rest)]

    results = asyncio.run(many())
    joiner.close()
    assert counting.calls == [1, 80]  # ... and here exactly one lookup for all 40 waiting
    online = get_online_features(platform, {"customer_id": [3, 7]}, REFS).columns
    assert results[3] == {"spend": online["spend"], "count": online["count"]}
