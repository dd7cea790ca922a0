"""Demo stages: generate the scenario, store its raw files, ingest them under contracts."""

from __future__ import annotations

import hashlib
from typing import Any

from ghaf.data import ingest
from ghaf.data.contracts import contract_from_dict
from ghaf.demo.bank_data import generate_bank_data
from ghaf.demo.runner import DemoEnv
from ghaf.demo.state import Datasets, Generated, StoredFiles
from ghaf.errors import IntegrityError

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


def generate_data(env: DemoEnv) -> Generated:
    """The seeded scenario, written as raw Parquet files under the work directory (the
    true fraud probabilities stay in memory: they are the oracle, not data)."""
    data = generate_bank_data(seed=7)
    return Generated(data, data.write(env.workdir / "raw"))


def store_raw_files(env: DemoEnv, generated: Generated) -> StoredFiles:
    """The raw files as content-addressed (encrypted) artifacts."""
    infos = {name: env.platform.artifacts.put(path) for name, path in generated.paths.items()}
    return StoredFiles(
        {name: info.digest for name, info in infos.items()}, sum(i.size for i in infos.values())
    )


def ingest_bank_data(env: DemoEnv, generated: Generated, stored: StoredFiles) -> Datasets:
    """Each raw file whose bytes are the stored artifact's (SHA-256 checked) through its
    contract into a dataset version; the drift period passes the transactions' contract
    with warnings."""
    platform, actor = env.platform, env.platform.admin()
    paths = generated.paths
    for name, digest in stored.digests.items():
        if hashlib.sha256(paths[name].read_bytes()).hexdigest() != digest:
            raise IntegrityError(
                f"{paths[name]} is not the stored artifact {digest[:12]}",
                hint="run the demo again in a fresh home",
            )
    customers = ingest(
        platform, actor, paths["customers"], "customers", contract=contract_from_dict(CUSTOMERS)
    )
    contract = contract_from_dict(TRANSACTIONS)
    transactions = ingest(platform, actor, paths["transactions"], "transactions", contract=contract)
    drift = ingest(
        platform, actor, paths["drift_transactions"], "drift_transactions", contract=contract
    )
    warnings = tuple(
        c["name"] for c in (drift.validation or {}).get("checks", []) if c["status"] == "warn"
    )
    return Datasets(customers, transactions, drift, warnings)
