"""Demo stage: customer behaviour features, a fraud training set, materialization, lookup."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghaf.demo.runner import DemoContext
from ghaf.features import Entity, FeatureService, FeatureView, Field, OnDemandFeatureView, Transform
from ghaf.features.materialize import check_consistency, materialize
from ghaf.features.online import get_online_features
from ghaf.features.registry import apply_definitions
from ghaf.features.retrieval import get_historical_features, save_training_set

BEHAVIOUR_SQL = """
SELECT customer_id, event_ts,
       sum(amount_aed) OVER w7 AS spend_7d,
       count(*) OVER w7 AS tx_count_7d,
       sum(amount_aed) OVER w30 AS spend_30d,
       count(*) OVER w30 AS tx_count_30d,
       avg(amount_aed) OVER w30 AS avg_amount_30d,
       avg(CASE WHEN channel = 'online' THEN 1.0 ELSE 0.0 END) OVER w30 AS share_online_30d,
       avg(CASE WHEN country <> 'AE' THEN 1.0 ELSE 0.0 END) OVER w30 AS share_foreign_30d,
       epoch(event_ts)::BIGINT AS last_tx_epoch
FROM tx
WINDOW w7 AS (PARTITION BY customer_id ORDER BY event_ts
              RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW),
       w30 AS (PARTITION BY customer_id ORDER BY event_ts
               RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND CURRENT ROW)
"""
FEATURES = (
    "spend_7d",
    "tx_count_7d",
    "spend_30d",
    "tx_count_30d",
    "avg_amount_30d",
    "share_online_30d",
    "share_foreign_30d",
)


def minutes_since_last_tx(columns: dict[str, pa.Array]) -> dict[str, Any]:
    """On-demand: minutes between the request time and the customer's last transaction."""
    now = pc.cast(columns["request_epoch"], pa.float64())
    last = pc.cast(columns["last_tx_epoch"], pa.float64())
    return {"minutes_since_last_tx": pc.divide(pc.subtract(now, last), 60.0)}


def _definitions(source: str) -> list[Any]:
    customer = Entity("customer", ("customer_id",), "A card holder")
    behaviour = FeatureView(
        name="customer_behaviour",
        entities=(customer,),
        source=Transform(BEHAVIOUR_SQL, {"tx": source}),
        features=(
            *(Field(n, "int64" if "count" in n else "float64") for n in FEATURES),
            Field("last_tx_epoch", "int64"),
        ),
        timestamp_field="event_ts",
        ttl=timedelta(days=400),
        owner="fraud-team",
        tags={"use": "fraud"},
        classification="confidential",
        description="Rolling 7/30-day spend and mix per customer, after each transaction",
    )
    recency = OnDemandFeatureView(
        name="recency",
        sources=("customer_behaviour:last_tx_epoch",),
        request_fields=(Field("request_epoch", "int64"),),
        features=(Field("minutes_since_last_tx"),),
        function=minutes_since_last_tx,
        owner="fraud-team",
    )
    service = FeatureService(
        "fraud_features",
        tuple(f"customer_behaviour:{n}" for n in (*FEATURES, "last_tx_epoch")),
        owner="fraud-team",
    )
    return [customer, behaviour, recency, service]


def build_features(ctx: DemoContext) -> str:
    platform, admin = ctx.platform, ctx.platform.admin()
    datasets = ctx.results.get("datasets") or {}
    if "transactions" in datasets:
        version = datasets["transactions"]
        source = f"dataset:{version.name}:{version.version}"
    else:
        source = str(ctx.results["bank_paths"]["transactions"])
    apply_definitions(platform, admin, _definitions(source), source="demo")
    tx: pa.Table = ctx.results["bank_data"].transactions
    # Features as of one second before each transaction: what serving would have seen.
    frame = pa.table(
        {
            "customer_id": tx["customer_id"],
            "event_ts": pc.subtract(tx["event_ts"], pa.scalar(timedelta(seconds=1))),
            "tx_id": tx["tx_id"],
            "amount_aed": tx["amount_aed"],
            "channel": tx["channel"],
            "country": tx["country"],
            "hour": tx["hour"],
            "is_fraud": tx["is_fraud"],
        }
    )
    training = get_historical_features(platform, frame, "fraud_features").read_all()
    micros = pc.cast(pc.cast(training["event_ts"], pa.timestamp("us", tz="UTC")), pa.int64())
    request_epoch = pc.divide(pc.cast(micros, pa.float64()), 1e6)
    minutes = minutes_since_last_tx(
        {"request_epoch": request_epoch, "last_tx_epoch": training["last_tx_epoch"]}
    )["minutes_since_last_tx"]
    training = training.append_column("minutes_since_last_tx", minutes)
    saved = save_training_set(platform, admin, "fraud_training", training, "fraud_features")
    [result] = materialize(
        platform, admin, ["customer_behaviour"], until=tx["event_ts"][-1].as_py()
    )
    report = check_consistency(platform, "customer_behaviour")
    sample = int(tx["customer_id"][0].as_py())
    last_ts = tx["event_ts"][-1].as_py().timestamp()
    online = get_online_features(
        platform,
        {"customer_id": [sample], "request_epoch": [int(last_ts)]},
        ["customer_behaviour:spend_7d", "customer_behaviour:tx_count_30d", "recency"],
    )
    ctx.results["features"] = {
        "service": "fraud_features",
        "refs": [f"customer_behaviour:{n}" for n in FEATURES],
        "on_demand": "recency",
        "entity_key": "customer_id",
        "training_set": f"dataset:{saved.name}:{saved.version}",
        "training_columns": training.column_names,
        "online_store_url": platform.settings.resolved_online_store_url,
        "sample_lookup": online.to_dict(),
    }
    missing = int(np.sum(pc.is_null(training["spend_7d"]).to_numpy(zero_copy_only=False)))
    return (
        f"{len(FEATURES) + 1} features; training set {training.num_rows:,} rows "
        f"({missing:,} with no history); {result.rows:,} customers materialized, "
        f"consistency {'ok' if report.ok else 'FAILED'}; customer {sample} "
        f"spend_7d={online.columns['spend_7d'][0]:.0f} AED"
    )
