"""Every governed write path is registered and exercised: a new one without an example fails.

Writes outside the spine are refused by the engine (see the metadata contract), so
together these show no write path bypasses authorize → act → audit.
"""

from __future__ import annotations

import importlib
import pkgutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

import ghaf
from ghaf.access.tokens import verify_token
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor
from ghaf.spine import WRITE_OPERATIONS
from ghaf.testing.people import mint

_SKIP_PREFIXES = (
    "ghaf.__main__",
    "ghaf.cli",
    "ghaf.testing",
    "ghaf.demo",
    "ghaf.metadata.migrations",
)


def _import_every_module() -> None:
    for info in pkgutil.walk_packages(ghaf.__path__, "ghaf."):
        if not info.name.startswith(_SKIP_PREFIXES):
            importlib.import_module(info.name)


def _home_init(platform: Platform) -> None:
    from ghaf.home import _record_home

    _record_home(platform, platform.admin())


def _project_create(platform: Platform) -> None:
    create_project(platform, platform.admin(), "example")


def _dataset_write(platform: Platform) -> None:
    import pyarrow as pa

    from ghaf.data import write_dataset

    write_dataset(platform, platform.admin(), "example", pa.table({"a": [1]}), source="test")


def _dataset_ingest(platform: Platform) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ghaf.data import ingest

    path = platform.settings.home / "example.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    ingest(platform, platform.admin(), path, "example", contract={"columns": {"a": {"min": 0}}})


def _dataset_ingest_stream(platform: Platform) -> None:
    from ghaf.data.stream import write_micro_batch

    write_micro_batch(platform, platform.admin(), "example", [{"a": 1}], ["k1"], source="t")


def _transform_run(platform: Platform) -> None:
    from ghaf.data import run_transform

    run_transform(
        platform, platform.admin(), "out", {"b": "example"}, sql="SELECT a + 1 AS a FROM b"
    )


def _register_example_model(platform: Platform) -> None:
    import tempfile
    from pathlib import Path

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from ghaf.models import save_model
    from ghaf.registry import register_model

    x = np.arange(20, dtype=float).reshape(10, 2)
    model = LogisticRegression().fit(x, np.arange(10) % 2)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, Path(tmp) / "m")
        register_model(platform, platform.admin(), "example", Path(tmp) / "m")


def _model_upload(platform: Platform) -> None:
    import hashlib

    from ghaf.registry.uploads import store_upload

    path = platform.settings.home / "upload.bin"
    path.write_bytes(b"example")
    digest = hashlib.sha256(b"example").hexdigest()
    store_upload(
        platform,
        platform.admin(),
        path,
        digest=digest,
        project=platform.default_project,
    )


def _model_alias(platform: Platform) -> None:
    from ghaf.registry import set_alias

    set_alias(platform, platform.admin(), "example", "candidate", 1)


def _model_alias_delete(platform: Platform) -> None:
    from ghaf.registry import delete_alias

    delete_alias(platform, platform.admin(), "example", "candidate")


def _register_and_alias(platform: Platform) -> None:
    _register_example_model(platform)
    _model_alias(platform)


_TOKENS: dict[tuple[str, str], str] = {}
"""Tokens minted in SETUP, by (home, person), so an example only uses them (no writes)."""


def _mint(platform: Platform, name: str, roles: list[str]) -> None:
    _TOKENS[(str(platform.settings.home), name)] = mint(platform, name, roles)


def _as(platform: Platform, name: str) -> Actor:
    return verify_token(platform, _TOKENS[(str(platform.settings.home), name)])


def _register_as_ana(platform: Platform) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from ghaf.models import save_model
    from ghaf.registry import register_model

    for name, role in (("ana", "data_scientist"), ("ben", "model_approver")):
        _mint(platform, name, [role])
    _mint(platform, "rita", ["release_manager"])
    x = np.arange(20, dtype=float).reshape(10, 2)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(LogisticRegression().fit(x, np.arange(10) % 2), Path(tmp) / "m")
        register_model(platform, _as(platform, "ana"), "example", Path(tmp) / "m")


def _model_approve(platform: Platform) -> None:
    from ghaf.registry import approve_model_version

    approve_model_version(platform, _as(platform, "ben"), "example:1")


def _break_glass_request(platform: Platform) -> None:
    from ghaf.registry.break_glass import request_break_glass

    request_break_glass(
        platform,
        _as(platform, "rita"),
        "example",
        1,
        alias="champion",
        reason="INC-1: v2 scores NaN, restore v1",
    )


def _register_and_request_break_glass(platform: Platform) -> None:
    _register_as_ana(platform)
    _break_glass_request(platform)


def _break_glass_confirm(platform: Platform) -> None:
    from ghaf.registry.break_glass import confirm_break_glass, list_break_glass

    confirm_break_glass(platform, _as(platform, "ben"), list_break_glass(platform)[0].id)


def _release_policy_set(platform: Platform) -> None:
    from ghaf.registry.release import DEFAULT_POLICY, set_release_policy

    set_release_policy(platform, platform.admin(), "default", DEFAULT_POLICY)


def _code_policy_set(platform: Platform) -> None:
    from ghaf.registry.code_policy import change_code_policy

    change_code_policy(platform, platform.admin(), "default", allow=["numpy"], reason="reviewed")


def _home_transfer(platform: Platform) -> None:
    from ghaf.home import transfer_home

    transfer_home(platform, platform.admin(), "nobody")


def _home_login_link(platform: Platform) -> None:
    from ghaf.access.web_sessions import create_login_link

    create_login_link(platform, platform.admin())


_LINKS: list[str] = []


def _login_link_made(platform: Platform) -> None:
    from ghaf.access.web_sessions import create_login_link

    made = create_login_link(platform, platform.admin())
    _LINKS.append(f"{made.link_id}.{made.secret}")


def _home_login_link_open(platform: Platform) -> None:
    from ghaf.access.web_sessions import login_link_actor, open_login_link

    token = _LINKS.pop()
    open_login_link(platform, login_link_actor(platform, token, "test"), token.split(".")[0])


def _model_promote(platform: Platform) -> None:
    from ghaf.registry import transition_model_version

    transition_model_version(platform, platform.admin(), "example:1", "staging")


def _model_card_update(platform: Platform) -> None:
    from ghaf.registry import update_model_card

    update_model_card(platform, platform.admin(), "example:1", "# Edited card")


def _gate_policy_add(platform: Platform) -> None:
    from ghaf.registry.gate_policies import add_gate_policy

    add_gate_policy(platform, platform.admin(), "metrics:\n  auc: {min: 0.5}\n", name="example")


def _gate_policy_attach(platform: Platform) -> None:
    from ghaf.registry.gate_policies import attach_gate_policy

    attach_gate_policy(platform, platform.admin(), "example", model="example")


def _register_and_add_gate_policy(platform: Platform) -> None:
    _register_example_model(platform)
    _gate_policy_add(platform)


def _deployment_create(platform: Platform) -> None:
    from ghaf.serving.deployments import create_deployment

    create_deployment(platform, platform.admin(), "example-live", ["example:1"])


def _deployment_update(platform: Platform) -> None:
    from ghaf.serving.deployments import update_deployment

    update_deployment(platform, platform.admin(), "example-live", status="stopped")


def _register_approved(platform: Platform) -> None:
    _register_as_ana(platform)
    _model_approve(platform)


def _register_and_deploy(platform: Platform) -> None:
    _register_approved(platform)
    _deployment_create(platform)


def _experiment_ready(platform: Platform) -> None:
    """Two approved versions of ``example`` served by ``example-live``."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from ghaf.models import save_model
    from ghaf.registry import approve_model_version, register_model
    from ghaf.serving.deployments import create_deployment

    _register_approved(platform)
    x = np.arange(20, dtype=float).reshape(10, 2)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(LogisticRegression().fit(x, np.arange(10) % 2), Path(tmp) / "m")
        register_model(platform, _as(platform, "ana"), "example", Path(tmp) / "m")
    approve_model_version(platform, _as(platform, "ben"), "example:2")
    create_deployment(platform, platform.admin(), "example-live", ["example:1", "example:2"])


def _ab_create(platform: Platform) -> None:
    from ghaf.experiments.service import create_experiment

    variants = {"example:1": 1.0, "example:2": 1.0}
    create_experiment(platform, platform.admin(), "example-ab", "example-live", variants)


def _experiment_start(platform: Platform) -> None:
    from ghaf.experiments.service import start_experiment

    start_experiment(platform, platform.admin(), "example-ab")


def _experiment_stop(platform: Platform) -> None:
    from ghaf.experiments.service import stop_experiment

    stop_experiment(platform, platform.admin(), "example-ab")


def _experiment_decide(platform: Platform) -> None:
    from ghaf.experiments.service import decide_experiment

    decide_experiment(platform, platform.admin(), "example-ab")


def _experiment_created(platform: Platform) -> None:
    _experiment_ready(platform)
    _ab_create(platform)


def _experiment_running(platform: Platform) -> None:
    _experiment_created(platform)
    _experiment_start(platform)


def _experiment_logged(platform: Platform) -> None:
    """A stopped experiment whose units the prediction log (HOME/predictions) holds."""
    import numpy as np
    import pyarrow.parquet as pq

    from ghaf.experiments.service import default_log_dir
    from ghaf.serving.predlog import PredictionBatch

    _experiment_running(platform)
    _experiment_stop(platform)
    records = [
        {"request_id": f"r{i}", "ts": float(i), "model": "example", "version": str(1 + i % 2),
         "variant": str(1 + i % 2), "latency_ms": 1.0 + i % 3, "features": np.ones((1, 2)),
         "outputs": {"p": np.array([0.5])}, "unit": f"u{i}", "experiment": "example-ab"}
        for i in range(40)
    ]  # fmt: skip
    directory = default_log_dir(platform)
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(PredictionBatch.from_records(records).to_arrow(), directory / "p.parquet")


_CANARY = {"steps": [10, 100], "max_error_rate": None, "min_time_s": 0}


def _canary_start(platform: Platform) -> None:
    from ghaf.experiments.canary import start_canary

    admin = platform.admin()
    start_canary(
        platform,
        admin,
        "example-canary",
        "example-live",
        "example:2",
        _CANARY,
        champion="example:1",
    )


def _canary_evaluate(platform: Platform) -> None:
    from ghaf.experiments.canary import evaluate_canary

    evaluate_canary(platform, platform.admin(), "example-canary")  # no prediction log: pause


def _canary_pause(platform: Platform) -> None:
    from ghaf.experiments.canary import pause_canary

    pause_canary(platform, platform.admin(), "example-canary", "looking at the p99")


def _canary_resume(platform: Platform) -> None:
    from ghaf.experiments.canary import resume_canary

    resume_canary(platform, platform.admin(), "example-canary")


def _canary_rollback(platform: Platform) -> None:
    from ghaf.experiments.canary import rollback_canary

    rollback_canary(platform, platform.admin(), "example-canary", "INC-7: errors up")


def _canary_started(platform: Platform) -> None:
    _experiment_ready(platform)
    _canary_start(platform)


def _canary_paused(platform: Platform) -> None:
    _canary_started(platform)
    _canary_pause(platform)


def _model_feedback(platform: Platform) -> None:
    from ghaf.serving.outcomes import Outcome, record_outcomes

    record_outcomes(platform, platform.admin(), "example", [Outcome(1.0, request_id="r1")])


def _example_run(platform: Platform) -> None:
    from ghaf.tracking.service import create_run

    create_run(platform, platform.admin(), "example", name="example")


def _run_id(platform: Platform) -> str:
    from ghaf.tracking import search_runs

    return search_runs(platform, "attributes.name = \x27example\x27").runs[0].run_id


def _experiment_create(platform: Platform) -> None:
    from ghaf.tracking.service import create_experiment

    create_experiment(platform, platform.admin(), "example")


def _run_log_batch(platform: Platform) -> None:
    from ghaf.tracking.service import log_batch

    log_batch(platform, platform.admin(), _run_id(platform), metrics=[("m", 1.0, 0, 0.0)])


def _run_end(platform: Platform) -> None:
    from ghaf.tracking.service import end_run

    end_run(platform, platform.admin(), _run_id(platform))


def _run_log_artifacts(platform: Platform) -> None:
    from ghaf.tracking.service import record_artifacts

    info = platform.artifacts.put_bytes(b"example")
    record_artifacts(platform, platform.admin(), _run_id(platform), {"a.txt": (info.digest, 7)})


def _run_log_inputs(platform: Platform) -> None:
    from ghaf.tracking.service import log_inputs

    log_inputs(platform, platform.admin(), _run_id(platform), ["dataset:example:1"])


def _monitoring_profile_save(platform: Platform) -> None:
    import pyarrow as pa

    from ghaf.monitoring.profile import build_profile
    from ghaf.monitoring.store import save_profile

    profile = build_profile(pa.table({"x": [1.0, 2.0], "c": ["a", "b"]}))
    save_profile(platform, platform.admin(), "example_profile", profile, source="example")


def _monitoring_schedule(platform: Platform) -> None:
    from ghaf.monitoring.schedule import schedule_monitor

    schedule_monitor(platform, platform.admin(), "example-live", every="1m")


def _deploy_and_schedule(platform: Platform) -> None:
    _register_and_deploy(platform)
    _monitoring_schedule(platform)


def _monitoring_run(platform: Platform) -> None:
    from ghaf.monitoring.monitors import run_monitor

    run_monitor(platform, platform.admin(), "example-live")


def _backup_create(platform: Platform) -> None:
    from ghaf.backup import create_backup

    create_backup(platform, platform.admin(), tempfile.mkdtemp())


def _backup_restore(platform: Platform) -> None:
    """The restore's load into this home, of a backup holding no row but the chain's head
    as it stands (a real restore loads into an empty home: tests/integration)."""
    from ghaf.artifacts.local import LocalBlobStore
    from ghaf.backup import rows
    from ghaf.backup.service import ROWS_FILE, _load_metadata, _Source
    from ghaf.metadata.tables import load_all_tables

    lines = []
    with platform.read_session() as session:
        for table in load_all_tables().metadata.sorted_tables:
            dumped = rows.dump_table(session, table)
            lines.append(next(dumped))
            if table.name == "audit_head":
                lines.extend(dumped)
    store = LocalBlobStore(Path(tempfile.mkdtemp()))
    writer = store.begin_write()
    writer.write(b"".join(lines))
    writer.commit(ROWS_FILE)
    manifest = {"id": "example", "metadata": {"audit_seq": 0}, "files": {ROWS_FILE: {}}}
    _load_metadata(platform, platform.admin(), store.url, _Source(store, store.url, manifest))


def _keys_rotate(platform: Platform) -> None:
    from ghaf.access.rotation import rotate_keys

    platform.artifacts.put_bytes(b"rotated")
    rotate_keys(platform, platform.admin())


def _keys_destroy_version(platform: Platform) -> None:
    from ghaf.access.rotation import destroy_key_version

    destroy_key_version(platform, platform.admin(), 1)


def _keys_trust(platform: Platform) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from ghaf.access.rotation import trust_key

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    path = platform.settings.home / "partner.pub.pem"
    path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    trust_key(platform, platform.admin(), path)


def _audit_checkpoint(platform: Platform) -> None:
    from ghaf.access.audit import create_checkpoint

    create_checkpoint(platform, platform.admin())


def _principal_create(platform: Platform) -> None:
    from ghaf.access.bindings import create_principal

    create_principal(platform, platform.admin(), "example-group", kind="group")


def _group_add_member(platform: Platform) -> None:
    from ghaf.access.bindings import add_group_member

    add_group_member(platform, platform.admin(), "example-group", "alice")


def _role_bind(platform: Platform) -> None:
    from ghaf.access.bindings import bind_role

    bind_role(platform, platform.admin(), "alice", "viewer", project="example")


def _role_unbind(platform: Platform) -> None:
    from ghaf.access.bindings import unbind_role

    unbind_role(platform, platform.admin(), "alice", "viewer", project="example")


def _token_create(platform: Platform) -> None:
    from ghaf.access.tokens import create_token

    create_token(platform, platform.admin(), "alice", project="example")


def _token_revoke(platform: Platform) -> None:
    from ghaf.access.tokens import list_tokens, revoke_token

    token_id = list_tokens(platform, principal="alice")[0].token_id
    revoke_token(platform, platform.admin(), token_id, project="example")


def _bind_and_token(platform: Platform) -> None:
    _role_bind(platform)
    _token_create(platform)


def _pipeline_run_start(platform: Platform) -> None:
    from ghaf.pipelines.records import start_run

    steps = [{"id": "s1", "step": "a", "cache_key": "", "code_digest": "0" * 64}]
    start_run(
        platform,
        platform.admin(),
        "example",
        run_id="r1",
        executor="local",
        trigger="manual",
        params={},
        steps=steps,
    )


def _pipeline_step_update(platform: Platform) -> None:
    from ghaf.pipelines.records import update_step

    update_step(platform, platform.admin(), "r1", "s1", status="running", fields={"attempts": 1})


def _pipeline_run_finish(platform: Platform) -> None:
    from ghaf.pipelines.records import finish_run

    finish_run(platform, platform.admin(), "r1", status="succeeded")


def _erasure_subject(platform: Platform) -> None:
    from ghaf.privacy import erase_subject

    erase_subject(platform, platform.admin(), "a", "1")


def _erasure_dataset(platform: Platform) -> None:
    from ghaf.privacy import erase_dataset

    erase_dataset(platform, platform.admin(), "example")


def _retention_run(platform: Platform) -> None:
    from ghaf.privacy import run_retention

    run_retention(platform, platform.admin())


def _features_apply(platform: Platform) -> None:
    from ghaf.features.registry import apply_definitions
    from ghaf.testing.online_store import make_source, sample_definitions

    source = make_source(platform.settings.home / "feature_source.parquet")
    apply_definitions(platform, platform.admin(), sample_definitions(source))  # type: ignore[arg-type]


def _features_materialize(platform: Platform) -> None:
    from ghaf.features.materialize import materialize

    materialize(platform, platform.admin())


def _features_save_training_set(platform: Platform) -> None:
    import pyarrow as pa

    from ghaf.features.retrieval import get_historical_features, save_training_set
    from ghaf.testing.online_store import T0, TS

    frame = pa.table(
        {"customer_id": pa.array([1, 2], pa.int64()), "event_ts": pa.array([T0, T0], TS)}
    )
    data = get_historical_features(platform, frame, ["customer_stats:spend"])
    save_training_set(
        platform, platform.admin(), "training_example", data, ["customer_stats:spend"]
    )


def _prediction_export(platform: Platform) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ghaf.serving.models import load_served, resolve_model
    from ghaf.serving.outputs import export_predictions

    # The governed export itself: `ghaf predict` around it also records the job's usage
    # (usage.record, its own audited operation: tests/unit/cost).
    with tempfile.TemporaryDirectory() as tmp:
        spec = resolve_model(platform, "example:1", Path(tmp), serving=False)
        runtime = load_served(spec, platform=platform).runtime
        assert runtime is not None
        source = Path(tmp) / "in.parquet"
        pq.write_table(pa.table({"f0": [1.0, 2.0], "f1": [3.0, 4.0]}), source)
        out = str(Path(tmp) / "scores.parquet")
        export_predictions(platform, platform.admin(), out, runtime=runtime, source=source,
                           tags={}, model="model:example:1", progress=False)  # fmt: skip


def _alert_ingest(platform: Platform) -> None:
    from ghaf.alerts import Alert
    from ghaf.incidents import ingest_alerts

    ingest_alerts(platform, platform.admin(), [Alert("ExampleDown", {"deployment": "fraud"})])


def _alert_resolve(platform: Platform) -> None:
    from ghaf.alerts import fingerprint
    from ghaf.incidents import resolve_alert

    resolve_alert(platform, platform.admin(), fingerprint("ExampleDown", {"deployment": "fraud"}))


def _alert_deliver(platform: Platform) -> None:
    from ghaf.alerts import deliver_outbox

    deliver_outbox(platform, platform.admin())


def _audit_ship(platform: Platform) -> None:
    from ghaf.metadata.base import utcnow
    from ghaf.security.audit import GENESIS_HASH
    from ghaf.shipping.shipper import CursorChange, record_pass

    start = CursorChange("start", None, 0, GENESIS_HASH)
    record_pass(platform, platform.admin(), "siem", "https://siem.example/in", start, at=utcnow())


def _job_submit(platform: Platform) -> None:
    from ghaf.scheduling import submit_job

    platform.settings.pipelines.append("ghaf.pipelines.examples:numbers")  # declared
    submit_job(platform, platform.admin(), "pipeline", "ghaf.pipelines.examples:numbers")


def _queued_job(platform: Platform) -> str:
    from ghaf.scheduling import list_jobs

    return list_jobs(platform, statuses=("queued",))[0].id


def _job_claim(platform: Platform) -> None:
    from ghaf.scheduling.queue import claim_next

    claim_next(platform, platform.admin(), "example-host:1:1")


def _job_submit_and_claim(platform: Platform) -> None:
    _job_submit(platform)
    _job_claim(platform)


def _job_finish(platform: Platform) -> None:
    from ghaf.scheduling import list_jobs
    from ghaf.scheduling.queue import finish_job

    [job] = list_jobs(platform, statuses=("running",))
    finish_job(platform, platform.admin(), job.id, "example-host:1:1", status="succeeded")


def _job_heartbeat(platform: Platform) -> None:
    from ghaf.scheduling.queue import heartbeat

    heartbeat(platform, platform.admin(), "example-host:1:1")


def _job_reclaim(platform: Platform) -> None:
    from ghaf.scheduling import list_jobs
    from ghaf.scheduling.queue import reclaim_jobs

    [job] = list_jobs(platform, statuses=("running",))
    reclaim_jobs(platform, platform.admin(), {job.id: "example-host:1:1"})


def _job_cancel(platform: Platform) -> None:
    from ghaf.scheduling.queue import cancel_job

    cancel_job(platform, platform.admin(), _queued_job(platform), project=platform.default_project)


def _job_priority(platform: Platform) -> None:
    from ghaf.scheduling.queue import set_priority

    job = _queued_job(platform)
    set_priority(platform, platform.admin(), job, 5, project=platform.default_project)


def _quota_set(platform: Platform) -> None:
    from ghaf.scheduling import set_quota

    set_quota(platform, platform.admin(), "example", gpu_hours=10, weight=2)


def _quota_clear(platform: Platform) -> None:
    from ghaf.scheduling.quotas import clear_quota

    clear_quota(platform, platform.admin(), "example")


def _retrain_policy_set(platform: Platform) -> None:
    from ghaf.retraining import set_retrain_policy
    from ghaf.testing.retraining import TARGET

    platform.settings.pipelines.append(TARGET)  # the operator declares it
    plan = {"max_error_rate": None}
    set_retrain_policy(platform, platform.admin(), "example-live", pipeline=TARGET, plan=plan)


def _retrain_policy_delete(platform: Platform) -> None:
    from ghaf.retraining import delete_retrain_policy

    delete_retrain_policy(platform, platform.admin(), "example-live")


def _retrain_trigger(platform: Platform) -> None:
    from ghaf.metadata.base import utcnow
    from ghaf.retraining.hops import open_run

    open_run(
        platform, platform.admin(), "example-live", event="drift:default:1",
        subject="drift.detected", model_version="example:1", incident=None,
        trigger="retrain:default:example-live", status="training", reason="an example",
        until=None, champion="example:1", at=utcnow(),
    )  # fmt: skip


def _retrain_record(platform: Platform) -> None:
    from ghaf.metadata.base import utcnow
    from ghaf.retraining.hops import record_hop

    record_hop(platform, platform.admin(), "example-live", 1, "register", {}, at=utcnow(),
               candidate="example:2")  # fmt: skip


def _retrain_gates(platform: Platform) -> None:
    from ghaf.metadata.base import utcnow
    from ghaf.retraining.hops import run_gates

    run_gates(platform, platform.admin(), "example-live", 1, None, at=utcnow())


def _retrain_deploy(platform: Platform) -> None:
    from ghaf.metadata.base import utcnow
    from ghaf.retraining.hops import deploy_candidate

    deploy_candidate(platform, platform.admin(), "example-live", 1, at=utcnow())


def _retrain_candidate(platform: Platform) -> None:
    """``example-live`` serves example:1; a loop's run has registered example:2."""
    from ghaf.serving.deployments import update_deployment

    _experiment_ready(platform)
    update_deployment(platform, platform.admin(), "example-live", models=["example:1"])
    _retrain_trigger(platform)
    _retrain_record(platform)


def _slo_define(platform: Platform) -> None:
    from ghaf.slo import SLO
    from ghaf.slo.store import define_slo

    define_slo(
        platform, platform.admin(), SLO("fraud-availability", "fraud", "availability", 0.999)
    )


def _slo_delete(platform: Platform) -> None:
    from ghaf.slo.store import delete_slo

    delete_slo(platform, platform.admin(), "fraud-availability")


def _slo_fire(platform: Platform) -> None:
    import numpy as np

    from ghaf.slo import EventSeries
    from ghaf.slo.alerting import fire_slo

    total = np.full(60, 100, np.int64)  # an hour at 100 a minute, every request failing
    series = EventSeries(1_800_000_000.0, 60, np.zeros(60, np.int64), total)
    fire_slo(platform, platform.admin(), "fraud-availability", series)


def _slo_schedule(platform: Platform) -> None:
    from ghaf.slo.schedule import schedule_slo

    schedule_slo(platform, platform.admin(), "fraud-availability", ["http://127.0.0.1:9"])


def _slo_define_and_schedule(platform: Platform) -> None:
    _slo_define(platform)
    _slo_schedule(platform)


def _slo_unschedule(platform: Platform) -> None:
    from ghaf.slo.schedule import unschedule_slo

    unschedule_slo(platform, platform.admin(), "fraud-availability")


def _slo_scrape(platform: Platform) -> None:
    """The loop's first read of a target: a baseline sample, kept (nothing to judge yet)."""
    from ghaf.metadata.base import utcnow
    from ghaf.slo.schedule import evaluate_scheduled, list_slo_scrapes

    exposition = 'ghaf_requests_total{model="fraud",version="1",code="200"} 5.0\n'
    [scrape] = list_slo_scrapes(platform)
    evaluate_scheduled(platform, platform.admin(), scrape, utcnow(), lambda _: exposition)


def _usage_record(platform: Platform) -> None:
    from ghaf.cost import Usage, record_usage
    from ghaf.metadata.base import utcnow

    now = utcnow()
    usage = Usage("batch", "job-1", now, now, 60.0, cpu_s=30.0, cpu_request=1.0)
    record_usage(platform, platform.admin(), usage)


def _incident_move(verb: str, *args: str) -> Callable[[Platform], None]:
    def move(platform: Platform) -> None:
        from ghaf.incidents import lifecycle

        getattr(lifecycle, verb)(platform, platform.admin(), "INC0000001", *args)

    return move


def _incident_then(*verbs: str) -> Callable[[Platform], None]:
    def prepare(platform: Platform) -> None:
        _alert_ingest(platform)
        for verb in verbs:
            _incident_move(verb)(platform)

    return prepare


EXAMPLES: dict[str, Callable[[Platform], None]] = {
    "erasure.subject": _erasure_subject,
    "erasure.dataset": _erasure_dataset,
    "retention.run": _retention_run,
    "experiment.create": _experiment_create,
    "run.create": _example_run,
    "run.log_batch": _run_log_batch,
    "run.end": _run_end,
    "run.log_artifacts": _run_log_artifacts,
    "run.log_inputs": _run_log_inputs,
    "model.register": _register_example_model,
    "model.upload": _model_upload,
    "model.alias": _model_alias,
    "model.alias_delete": _model_alias_delete,
    "model.approve": _model_approve,
    "model.break_glass_request": _break_glass_request,
    "model.break_glass": _break_glass_confirm,
    "release_policy.set": _release_policy_set,
    "code_policy.set": _code_policy_set,
    "home.transfer": _home_transfer,
    "home.login_link": _home_login_link,
    "home.login_link_open": _home_login_link_open,
    "model.promote": _model_promote,
    "model.card_update": _model_card_update,
    "gate_policy.add": _gate_policy_add,
    "gate_policy.attach": _gate_policy_attach,
    "deployment.create": _deployment_create,
    "deployment.update": _deployment_update,
    "traffic.experiment_create": _ab_create,
    "traffic.experiment_start": _experiment_start,
    "traffic.experiment_stop": _experiment_stop,
    "traffic.experiment_decide": _experiment_decide,
    "traffic.canary_start": _canary_start,
    "traffic.canary_evaluate": _canary_evaluate,
    "traffic.canary_pause": _canary_pause,
    "traffic.canary_resume": _canary_resume,
    "traffic.canary_rollback": _canary_rollback,
    "model.feedback": _model_feedback,
    "dataset.write": _dataset_write,
    "dataset.ingest": _dataset_ingest,
    "dataset.ingest_stream": _dataset_ingest_stream,
    "transform.run": _transform_run,
    "home.init": _home_init,
    "project.create": _project_create,
    "monitoring.profile.save": _monitoring_profile_save,
    "monitoring.schedule": _monitoring_schedule,
    "monitoring.run": _monitoring_run,
    "backup.create": _backup_create,
    "backup.restore": _backup_restore,
    "keys.rotate": _keys_rotate,
    "keys.destroy_version": _keys_destroy_version,
    "keys.trust": _keys_trust,
    "audit.checkpoint": _audit_checkpoint,
    "principal.create": _principal_create,
    "group.add_member": _group_add_member,
    "role.bind": _role_bind,
    "role.unbind": _role_unbind,
    "token.create": _token_create,
    "token.revoke": _token_revoke,
    "pipeline.run_start": _pipeline_run_start,
    "pipeline.step_update": _pipeline_step_update,
    "pipeline.run_finish": _pipeline_run_finish,
    "features.apply": _features_apply,
    "features.materialize": _features_materialize,
    "features.save_training_set": _features_save_training_set,
    "prediction.export": _prediction_export,
    "alert.ingest": _alert_ingest,
    "alert.resolve": _alert_resolve,
    "alert.deliver": _alert_deliver,
    "audit.ship": _audit_ship,
    "job.submit": _job_submit,
    "job.claim": _job_claim,
    "job.finish": _job_finish,
    "job.heartbeat": _job_heartbeat,
    "job.reclaim": _job_reclaim,
    "job.cancel": _job_cancel,
    "job.priority": _job_priority,
    "quota.set": _quota_set,
    "quota.clear": _quota_clear,
    "slo.define": _slo_define,
    "slo.delete": _slo_delete,
    "slo.fire": _slo_fire,
    "usage.record": _usage_record,
    "slo.schedule": _slo_schedule,
    "slo.unschedule": _slo_unschedule,
    "slo.scrape": _slo_scrape,
    "deployment.retrain_set": _retrain_policy_set,
    "deployment.retrain_delete": _retrain_policy_delete,
    "deployment.retrain_trigger": _retrain_trigger,
    "deployment.retrain_record": _retrain_record,
    "deployment.retrain_gates": _retrain_gates,
    "deployment.retrain_deploy": _retrain_deploy,
    "incident.ack": _incident_move("acknowledge"),
    "incident.hold": _incident_move("hold", "waiting on the vendor"),
    "incident.resume": _incident_move("resume"),
    "incident.resolve": _incident_move("resolve", "rolled back"),
    "incident.close": _incident_move("close"),
    "incident.cancel": _incident_move("cancel", "a test alert"),
    "incident.reopen": _incident_move("reopen", "it came back"),
    "incident.assign": _incident_move("assign", "sam"),
    "incident.note": _incident_move("add_note", "looking"),
    "incident.record": _incident_move("record_event", "rollback"),
}
"""One call per governed action; add yours when you add a governed function."""

SETUP: dict[str, Callable[[Platform], None]] = {
    "erasure.subject": _dataset_write,
    "erasure.dataset": _dataset_write,
    "job.claim": _job_submit,
    "job.finish": _job_submit_and_claim,
    "job.heartbeat": _job_submit_and_claim,
    "job.reclaim": _job_submit_and_claim,
    "job.cancel": _job_submit,
    "job.priority": _job_submit,
    "quota.clear": _quota_set,
    "slo.delete": _slo_define,
    "slo.fire": _slo_define,
    "slo.schedule": _slo_define,
    "slo.unschedule": _slo_define_and_schedule,
    "slo.scrape": _slo_define_and_schedule,
    "features.materialize": _features_apply,
    "features.save_training_set": _features_apply,
    "prediction.export": _register_example_model,
    "transform.run": _dataset_write,
    "run.log_batch": _example_run,
    "run.end": _example_run,
    "run.log_artifacts": _example_run,
    "run.log_inputs": _example_run,
    "model.alias": _register_example_model,
    "model.alias_delete": _register_and_alias,
    "model.approve": _register_as_ana,
    "model.break_glass_request": _register_as_ana,
    "model.break_glass": _register_and_request_break_glass,
    "model.promote": _register_example_model,
    "model.card_update": _register_example_model,
    "gate_policy.attach": _register_and_add_gate_policy,
    "deployment.create": _register_approved,
    "deployment.update": _register_and_deploy,
    "monitoring.schedule": _register_and_deploy,
    "monitoring.run": _deploy_and_schedule,
    "traffic.experiment_create": _experiment_ready,
    "traffic.experiment_start": _experiment_created,
    "traffic.experiment_stop": _experiment_running,
    "traffic.experiment_decide": _experiment_logged,
    "traffic.canary_start": _experiment_ready,
    "traffic.canary_evaluate": _canary_started,
    "traffic.canary_pause": _canary_started,
    "traffic.canary_resume": _canary_paused,
    "traffic.canary_rollback": _canary_started,
    "keys.destroy_version": _keys_rotate,
    "group.add_member": _principal_create,
    "role.unbind": _role_bind,
    "token.create": _role_bind,
    "token.revoke": _bind_and_token,
    "pipeline.step_update": _pipeline_run_start,
    "pipeline.run_finish": _pipeline_run_start,
    "alert.resolve": _alert_ingest,
    "alert.deliver": _alert_ingest,
    "deployment.retrain_set": _register_and_deploy,
    "deployment.retrain_delete": lambda p: (_register_and_deploy(p), _retrain_policy_set(p)),
    "deployment.retrain_record": _retrain_trigger,
    "deployment.retrain_gates": _retrain_candidate,
    "deployment.retrain_deploy": _retrain_candidate,
    **{
        f"incident.{verb}": _incident_then()
        for verb in ("ack", "hold", "resolve", "cancel", "assign", "note", "record")
    },
    "home.login_link_open": _login_link_made,
    "incident.resume": _incident_then("hold"),
    "incident.close": _incident_then("resolve"),
    "incident.reopen": _incident_then("resolve"),
}
"""Optional preparation for an action (its own audit records are not counted)."""


def test_every_governed_action_has_an_example() -> None:
    _import_every_module()
    assert set(WRITE_OPERATIONS) == set(EXAMPLES), (
        "add an example for each new governed action to EXAMPLES"
    )


@pytest.mark.parametrize("action", sorted(EXAMPLES))
def test_each_action_appends_exactly_one_audit_record(platform: Platform, action: str) -> None:
    if action in SETUP:
        SETUP[action](platform)
    with platform.read_session() as session:
        before = session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one()
    EXAMPLES[action](platform)
    with platform.read_session() as session:
        after = session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one()
        last = session.execute(
            select(AuditRecordRow).order_by(AuditRecordRow.seq.desc()).limit(1)
        ).scalar_one()
    assert after == before + 1
    assert last.action == action
    assert last.outcome == "allowed"
