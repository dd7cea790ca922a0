"""Feast 0.67 on W2/W3, run by the Feast venv's python (not Ghaf's), one operation per process.

``python _feast_runner.py OP ROOT`` where ROOT holds ``features.parquet`` and
``entities.parquet`` written by benchmarks/features.py. Prints one JSON line last.
Imports only the standard library and what Feast itself installs.

Operations: ``apply`` (register the entity and the view; not timed), ``w2_dask`` and
``w2_duckdb`` (get_historical_features with that offline store, to a DataFrame),
``materialize`` (all rows into Feast's SQLite online store, in-process), ``w3`` (online
reads of 1 and 100 entities from that store).
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FEATURES = [f"f{i}" for i in range(10)]


def _store(root: Path, offline: str) -> Any:
    from feast import FeatureStore, RepoConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

    if offline == "duckdb":
        from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig

        offline_config: Any = DuckDBOfflineStoreConfig()
    else:
        from feast.infra.offline_stores.dask import DaskOfflineStoreConfig

        offline_config = DaskOfflineStoreConfig()
    repo = root / "feast"
    repo.mkdir(exist_ok=True)
    config = RepoConfig(
        project="w2bench",
        provider="local",
        registry=str(repo / "registry.db"),
        online_store=SqliteOnlineStoreConfig(path=str(repo / "online.db")),
        offline_store=offline_config,
        entity_key_serialization_version=3,
        repo_path=repo,
    )
    return FeatureStore(config=config)


def _definitions(root: Path) -> list[Any]:
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    entity = Entity(name="entity", join_keys=["entity_id"], value_type=ValueType.INT64)
    source = FileSource(
        path=str(root / "features.parquet"), timestamp_field="event_timestamp", name="w2_src"
    )
    view = FeatureView(
        name="w2",
        entities=[entity],
        ttl=timedelta(days=1),
        schema=[Field(name=f, dtype=Float64) for f in FEATURES],
        source=source,
        online=True,
    )
    return [entity, view]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99) - 1]


def main(op: str, root_name: str) -> None:
    root = Path(root_name)
    result: dict[str, Any] = {"op": op}
    if op == "apply":
        import feast

        _store(root, "dask").apply(_definitions(root))
        result["version"] = feast.__version__
    elif op in ("w2_dask", "w2_duckdb"):
        import pandas as pd

        if op == "w2_duckdb":
            try:  # Feast's duckdb offline store needs feast[duckdb] (ibis, duckdb)
                import ibis  # noqa: F401
            except ImportError as exc:
                print(json.dumps({"op": op, "unavailable": str(exc)}), flush=True)
                return
        store = _store(root, op.removeprefix("w2_"))
        refs = [f"w2:{f}" for f in FEATURES]
        entity_df = pd.read_parquet(root / "entities.parquet")
        started = time.perf_counter()
        frame = store.get_historical_features(entity_df=entity_df, features=refs).to_df()
        result["seconds"] = time.perf_counter() - started
        result["rows"] = len(frame)
        result["null_rows"] = int(frame["f0"].isna().sum())
    elif op == "materialize":
        store = _store(root, "dask")
        started = time.perf_counter()
        store.materialize(start_date=datetime(2000, 1, 1, tzinfo=UTC), end_date=datetime.now(UTC))
        result["seconds"] = time.perf_counter() - started
    elif op == "w3":
        store = _store(root, "dask")
        refs = [f"w2:{f}" for f in FEATURES]
        calls, entities = int(sys.argv[3]), int(sys.argv[4])
        rng = random.Random(7)
        store.get_online_features(features=refs, entity_rows=[{"entity_id": 0}]).to_dict()
        for n in (1, 100):
            samples: list[float] = []
            for _ in range(calls):
                rows = [{"entity_id": rng.randrange(entities)} for _ in range(n)]
                started = time.perf_counter()
                store.get_online_features(features=refs, entity_rows=rows).to_dict()
                samples.append(time.perf_counter() - started)
            p50, p99 = _percentiles(samples)
            result[f"{n}_p50"], result[f"{n}_p99"] = p50 * 1e6, p99 * 1e6
    else:
        raise SystemExit(f"unknown operation {op!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
