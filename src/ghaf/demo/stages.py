"""The demo's stages, in order: one data path, then the live loop, then governance checks.

Each stage below takes the typed results it needs from the state (``need`` names the
missing one when a stage runs out of order) and adds its own. A capability joins the
loop by appending its stage to ``LIVE_LOOP``. What it can build on, after ``monitor
served``: the champion (``state.champion``: version, pipeline run, training set), the
running ``ghaf serve`` and its deployment record (``state.served``: URL, the scorer's
token, the prediction log in ``HOME/predictions``, where scheduled monitors and canaries
read by default; the server follows the record's revisions, so a canary moves traffic
by updating it), the replayed window (``state.replay``) and its drift against the
training profile (``state.served_drift``). Scheduled monitors over the prediction log
(``ghaf.monitoring``: ``schedule_monitor``/``run_due_monitors``) and the canary ramp
(``ghaf.experiments``) are the next stages. ``GOVERNANCE`` stays last so the audit
check sees every stage's records.
"""

from __future__ import annotations

from dataclasses import replace

from ghaf.demo.runner import DemoEnv, Stage, need
from ghaf.demo.stage_cost import show_costs
from ghaf.demo.stage_data import generate_data, ingest_bank_data, store_raw_files
from ghaf.demo.stage_features import build_features
from ghaf.demo.stage_identity import show_identity
from ghaf.demo.stage_loop import close_the_loop
from ghaf.demo.stage_monitoring import monitor_served
from ghaf.demo.stage_replay import replay_drift
from ghaf.demo.stage_security import show_security
from ghaf.demo.stage_serving import serve_champion
from ghaf.demo.stage_training import train_champion
from ghaf.demo.state import DemoState
from ghaf.errors import AlreadyExistsError
from ghaf.projects import create_project
from ghaf.security.audit import AuditLog

DEMO_PROJECT = "uae-card-fraud"


def _project(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    try:
        project = create_project(
            env.platform,
            env.platform.admin(),
            DEMO_PROJECT,
            description="Card-fraud detection for a UAE bank",
            region="ae-auh-1",
        )
        summary = f"project {project.name} in {project.region}"
    except AlreadyExistsError:
        summary = f"project {DEMO_PROJECT} exists"
    return replace(state, project=DEMO_PROJECT), summary


def _generate(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    generated = generate_data(env)
    return replace(state, generated=generated), generated.summary


def _store(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    stored = store_raw_files(env, need(state.generated, "the generated data"))
    return replace(state, stored=stored), stored.summary


def _ingest(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    datasets = ingest_bank_data(
        env, need(state.generated, "the generated data"), need(state.stored, "the stored files")
    )
    return replace(state, datasets=datasets), datasets.summary


def _features(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    features = build_features(env, need(state.datasets, "the ingested dataset versions"))
    return replace(state, features=features), features.summary


def _champion(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    champion = train_champion(
        env,
        need(state.generated, "the generated data (for the oracle)").data,
        need(state.datasets, "the ingested dataset versions"),
        need(state.features, "the feature store's training set"),
    )
    return replace(state, champion=champion), champion.summary


def _serve(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    served = serve_champion(
        env, need(state.champion, "the champion"), need(state.features, "the feature service")
    )
    return replace(state, served=served), served.summary


def _replay(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    replay = replay_drift(
        env,
        need(state.generated, "the generated data (for the oracle)").data,
        need(state.datasets, "the ingested dataset versions"),
        need(state.features, "the feature store"),
        need(state.served, "the served champion"),
    )
    return replace(state, replay=replay), replay.summary


def _monitor(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    drift = monitor_served(
        env,
        need(state.champion, "the champion"),
        need(state.served, "the served champion"),
        need(state.replay, "the replayed traffic"),
    )
    return replace(state, served_drift=drift), drift.summary


def _close_the_loop(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    loop = close_the_loop(
        env,
        need(state.datasets, "the ingested dataset versions"),
        need(state.features, "the feature store"),
        need(state.champion, "the champion"),
        need(state.served, "the served champion"),
        need(state.replay, "the replayed traffic"),
    )
    return replace(state, closed_loop=loop), loop.summary


def _security(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    summary = show_security(
        env, need(state.generated, "the generated data"), need(state.stored, "the stored files")
    )
    return state, summary


def _identity(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    return state, show_identity(env, need(state.datasets, "the ingested dataset versions"))


def _audit(env: DemoEnv, state: DemoState) -> tuple[DemoState, str]:
    with env.platform.read_session() as session:
        log = AuditLog()
        broken = log.first_broken(session)
        count = sum(1 for _ in log.records(session))
    return (
        state,
        f"{count} audit records, chain {'valid' if broken is None else f'BROKEN at {broken}'}",
    )


DATA_PATH: list[Stage] = [
    Stage("project", _project),
    Stage("generate data", _generate),
    Stage("store raw data", _store),
    Stage("ingest and validate", _ingest),
    Stage("features", _features),
    Stage("champion", _champion),
    Stage("serving", _serve),
]
"""From generated data to the champion served with online features."""

LIVE_LOOP: list[Stage] = [
    Stage("replay drift period", _replay),
    Stage("monitor served", _monitor),
    Stage("closed loop", _close_the_loop),
]
"""Traffic through the served model and what watches it; the loop's stages append here."""

GOVERNANCE: list[Stage] = [
    Stage("cost", show_costs),
    Stage("security", _security),
    Stage("identity and residency", _identity),
    Stage("audit trail", _audit),
]
"""Checks over everything the stages did; the audit check stays last."""

STAGES: list[Stage] = [*DATA_PATH, *LIVE_LOOP, *GOVERNANCE]
