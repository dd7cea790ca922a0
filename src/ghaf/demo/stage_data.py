"""Demo stage: ingest customers and transactions under contracts; validate the drift period."""

from __future__ import annotations

from typing import Any

from ghaf.data import DatasetVersion, ingest
from ghaf.data.contracts import contract_from_dict
from ghaf.demo.runner import DemoContext

CUSTOMERS: dict[str, Any] = {
    "residency": "ae-auh-1",
    "columns": {
        "customer_id": {"type": "int64", "nullable": False, "unique": True, "tag": "pii"},
        "emirate": {"type": "string", "nullable": False, "tag": "sensitive"},
        "age_band": {
            "type": "string",
            "allowed": ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"],
            "tag": "sensitive",
        },
        "gender": {"type": "string", "allowed": ["F", "M"], "tag": "pii"},
        "account_age_days": {"type": "int64", "min": 1, "max": 36500},
        "signup_ts": {"type": "timestamp", "nullable": False},
    },
    "checks": [{"kind": "row_count", "min": 1000}],
}

TRANSACTIONS: dict[str, Any] = {
    "residency": "ae-auh-1",
    "columns": {
        "tx_id": {"type": "int64", "nullable": False, "unique": True, "tag": "public"},
        "customer_id": {"type": "int64", "nullable": False, "tag": "pii"},
        "event_ts": {"type": "timestamp", "nullable": False},
        "amount_aed": {"type": "double", "min": 0, "max": 100000, "tag": "sensitive"},
        "merchant_category": {"type": "string", "nullable": False},
        "channel": {"type": "string", "allowed": ["online", "pos"]},
        "country": {"type": "string", "regex": "^[A-Z]{2}$"},
        "hour": {"type": "int32", "min": 0, "max": 23},
        "is_fraud": {"type": "bool", "nullable": False},
    },
    "checks": [
        {
            "kind": "references",
            "column": "customer_id",
            "dataset": "customers",
            "key": "customer_id",
        },
        {"kind": "row_count", "min": 10000},
        # Drift guards, as warnings: the drift period breaks them without stopping ingest.
        {
            "kind": "distribution",
            "column": "amount_aed",
            "stat": "mean",
            "min": 100,
            "max": 450,
            "severity": "warn",
            "name": "amount mean in normal range",
        },
        {
            "kind": "distribution",
            "column": "amount_aed",
            "stat": "quantile",
            "q": 0.95,
            "max": 2500,
            "severity": "warn",
            "name": "amount p95 in normal range",
        },
        {
            "kind": "range",
            "column": "amount_aed",
            "max": 20000,
            "severity": "warn",
            "name": "no extreme amounts",
        },
    ],
}


def ingest_bank_data(ctx: DemoContext) -> str:
    paths = ctx.results["bank_paths"]
    platform, actor = ctx.platform, ctx.platform.admin()
    datasets: dict[str, DatasetVersion] = {
        "customers": ingest(
            platform, actor, paths["customers"], "customers", contract=contract_from_dict(CUSTOMERS)
        ),
    }
    contract = contract_from_dict(TRANSACTIONS)
    datasets["transactions"] = ingest(
        platform, actor, paths["transactions"], "transactions", contract=contract
    )
    drift = ingest(
        platform, actor, paths["drift_transactions"], "drift_transactions", contract=contract
    )
    datasets["drift_transactions"] = drift
    ctx.results["datasets"] = datasets
    warnings = [
        c["name"] for c in (drift.validation or {}).get("checks", []) if c["status"] == "warn"
    ]
    return (
        f"customers:{datasets['customers'].version} "
        f"transactions:{datasets['transactions'].version} passed; "
        f"drift period: {len(warnings)} warnings ({', '.join(warnings) or 'none'})"
    )
