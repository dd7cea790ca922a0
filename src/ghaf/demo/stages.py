"""The demo's stages, in order; each capability adds its own stage to ``STAGES``."""

from __future__ import annotations

import pyarrow.compute as pc

from ghaf.demo.bank_data import generate_bank_data
from ghaf.demo.runner import DemoContext, Stage
from ghaf.demo.stage_data import ingest_bank_data
from ghaf.demo.stage_features import build_features
from ghaf.demo.stage_identity import show_identity
from ghaf.demo.stage_monitoring import monitor_drift
from ghaf.demo.stage_registry import train_and_register
from ghaf.demo.stage_security import show_security
from ghaf.demo.stage_serving import serve_and_score
from ghaf.demo.stage_training import train_gate_register
from ghaf.errors import AlreadyExistsError
from ghaf.projects import create_project
from ghaf.security.audit import AuditLog

DEMO_PROJECT = "uae-card-fraud"


def create_demo_project(ctx: DemoContext) -> str:
    try:
        project = create_project(
            ctx.platform,
            ctx.platform.admin(),
            DEMO_PROJECT,
            description="Card-fraud detection for a UAE bank",
            region="ae-auh-1",
        )
        return f"project {project.name} in {project.region}"
    except AlreadyExistsError:
        return f"project {DEMO_PROJECT} exists"


def generate_data(ctx: DemoContext) -> str:
    data = generate_bank_data(seed=7)
    ctx.results["bank_data"] = data
    ctx.results["bank_paths"] = data.write(ctx.workdir / "raw")
    fraud = pc.mean(data.transactions["is_fraud"].cast("float64")).as_py()
    return (
        f"{data.customers.num_rows:,} customers, {data.transactions.num_rows:,} transactions "
        f"({fraud:.1%} fraud), {data.drift_transactions.num_rows:,} in the drift period"
    )


def store_raw_files(ctx: DemoContext) -> str:
    infos = [ctx.platform.artifacts.put(path) for path in ctx.results["bank_paths"].values()]
    total = sum(info.size for info in infos)
    return f"{len(infos)} files, {total / 1e6:.1f} MB stored content-addressed"


def verify_audit(ctx: DemoContext) -> str:
    with ctx.platform.read_session() as session:
        log = AuditLog()
        broken = log.first_broken(session)
        count = sum(1 for _ in log.records(session))
    return f"{count} audit records, chain {'valid' if broken is None else f'BROKEN at {broken}'}"


STAGES: list[Stage] = [
    Stage("project", create_demo_project),
    Stage("generate data", generate_data),
    Stage("store raw data", store_raw_files),
    Stage("ingest and validate", ingest_bank_data),
    Stage("features", build_features),
    Stage("train and register", train_and_register),
    Stage("training pipeline", train_gate_register),
    Stage("serving", serve_and_score),
    Stage("security", show_security),
    Stage("monitoring", monitor_drift),
    Stage("identity and residency", show_identity),
    Stage("audit trail", verify_audit),
]
"""Add a capability's stage before "audit trail" so the audit check stays last."""
