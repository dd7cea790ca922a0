"""Projects as tenants over every route: a principal bound only in project A calls every
operation of the OpenAPI document aimed at project B's things and sees nothing of B.

One real ``ghaf server`` holds two projects. B (``zqproj``) is seeded through the server
by its own people with one of everything: datasets with versions and lineage, features
and their jobs, an experiment with a run, metrics and an artifact, a registered,
approved and aliased model with a card, a pipeline run, a deployment, a profile,
policies, a group, a token, a break-glass request, an alert and its incident, an upload
session and the audit trail all of it leaves. A's data scientist, A's project admin and
A's auditor (each bound only in A) then call each route
with B's names, ids and digests (and with A's project where a route writes into one,
so B's bytes would be pulled in by a guessed digest). Each answer is a refusal word for
word the same as for a made-up twin of B's values (so it tells nothing of whether B's
thing exists), or a success that carries none of B's marker strings.

The operations come from ``app.openapi()``: a route added later fails here until
``_calls`` says how to aim it at B. Calls that claim a name B holds (``claims``) may
answer 409: names are unique across a home, and that a name is taken is the one bit
revealed, as with S3 bucket names; the names test holds that answer to one wording.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ghaf
from ghaf.access.bindings import add_group_member, bind_role, create_principal
from ghaf.client import Client
from ghaf.home import init_home
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.server.app import create_app
from ghaf.settings import load_settings
from ghaf.testing.online_store import T0, TS, make_source
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

A, B = "alpha", "zqproj"
"""The caller's project and the other tenant's (every B name carries ``zq``)."""
NUMBERS = "ghaf.pipelines.examples:numbers"
STRICT = "name: zq-gate\nmetrics:\n  auc: {min: 0.75}\n"
REASON = "INC-231: champion scores NaN since 09:10, restoring v1"
VOLATILE_HEADERS = {"date", "content-length", "x-request-id", "x-ratelimit-remaining"}
SLO_BODY = {"deployment": "zq-deploy", "sli": "availability", "objective": 0.999}
SLO_EVENTS = {"series": {"start": 1.8e9, "step": 60, "good": [90, 0], "total": [100, 100]}}
RETRAIN_BODY = {"pipeline": NUMBERS, "plan": {"max_error_rate": None}}
USAGE_BODY = {"kind": "batch", "ref": "job-1", "started_at": "2026-01-01T00:00:00Z",
              "ended_at": "2026-01-01T01:00:00Z", "wall_s": 3600, "cpu_s": 60}  # fmt: skip


@dataclass
class Call:
    """One request aimed at B: path parameters, query, and a JSON or raw body."""

    path: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    claims: str | None = None
    """Set where the call claims a name B holds: a 409 is the one answer allowed."""


@dataclass
class World:
    platform: Platform
    server: ServerProcess
    tokens: dict[str, str]
    ids: dict[str, str]
    """B's seeded ids and digests by role (``run``, ``dataset_digest``...)."""
    markers: dict[str, str]
    """Each marker string of B and the made-up twin that stands for it."""

    def http(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=60)

    def client(self, who: str) -> Client:
        return ghaf.connect(self.server.url, token=self.tokens[who])


def _frame(seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"amount": rng.normal(100, 10, 200), "country": rng.choice(["ae", "om"], 200)})


def _features(prefix: str, source: str) -> dict[str, Any]:
    return {
        "entities": [{"name": f"{prefix}customer", "join_keys": ["customer_id"]}],
        "feature_views": [
            {
                "name": f"{prefix}stats",
                "entities": [f"{prefix}customer"],
                "source": f"dataset:{source}",
                "features": [{"name": "spend"}, {"name": "count", "dtype": "int64"}],
                "ttl_seconds": 10_000 * 86_400,
            }
        ],
        "feature_services": [{"name": f"{prefix}service", "features": [f"{prefix}stats:spend"]}],
    }


def _onnx_model(weight: float) -> bytes:
    """A one-node ONNX model (y = x * weight): registers without the ML stack's imports."""
    from onnx import TensorProto, helper

    vector = [None, 3]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, vector)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, vector)],
        [helper.make_tensor("w", TensorProto.FLOAT, [3], [weight] * 3)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def _entities() -> pa.Table:
    return pa.table(
        {
            "customer_id": pa.array([1, 2, 3], pa.int64()),
            "event_ts": pa.array([T0 + timedelta(days=d) for d in (1, 5, 9)], TS),
        }
    )


def _seed_tenant(
    world: World, who: str, project: str, prefix: str, tmp: Path, *, jobs: bool = True
) -> dict[str, str]:
    """One of everything in ``project``, made through the server by ``who`` (with
    ``jobs``: a materialization, a retrieval and a pipeline run too)."""
    seed = len(prefix) + ord(prefix[0])  # each tenant's bytes differ, so do their digests
    ids: dict[str, str] = {}
    pq.write_table(_frame(seed), tmp / "ledger.parquet")
    pq.write_table(_entities(), tmp / "visits.parquet")
    make_source(tmp / "stats.parquet", seed=seed)
    (tmp / "notes.txt").write_text(f"{prefix} notes\n")
    save_model(_onnx_model(float(seed)), tmp / "model")
    ledger, derived = f"{prefix}-ledger", f"{prefix}-derived"
    ids["upload_digest"] = hashlib.sha256((tmp / "ledger.parquet").read_bytes()).hexdigest()
    with world.client(who) as c:
        c.write_dataset(ledger, tmp / "ledger.parquet", project=project, source="test")
        c.write_dataset(ledger, tmp / "ledger.parquet", project=project, source="test2")
        c.write_dataset(
            derived,
            tmp / "ledger.parquet",
            project=project,
            source="test",
            inputs=[f"dataset:{ledger}:1"],
        )
        c.write_dataset(f"{prefix}-stats", tmp / "stats.parquet", project=project, source="t")
        c.write_dataset(f"{prefix}-visits", tmp / "visits.parquet", project=project, source="t")
        ids["dataset_digest"] = str(c.dataset(f"{ledger}:1")["digest"])
        c.apply_features(_features(prefix, f"{prefix}-stats"), project=project)
        if jobs:
            _seed_jobs(c, project, prefix, ids)
        run = c.start_run(f"{prefix}-exp", project=project, name=f"{prefix}-run")
        run.log_param("alpha", 0.5)
        run.log_metric("auc", 0.91)
        run.log_artifact(tmp / "notes.txt")
        run.log_input(f"dataset:{ledger}:1")
        run.end()
        ids["run"] = run.run_id
        [artifact] = c.get(f"/runs/{run.run_id}/artifacts")["files"]
        ids["run_artifact_digest"] = str(artifact["digest"])
        c.register_model(f"{prefix}-model", tmp / "model", project=project, run_id=run.run_id)
        files = c.get(f"/models/{prefix}-model:1/files")["files"]
        [onnx] = [f for f in files if f["path"].endswith(".onnx")]
        ids["model_digest"], ids["model_path"] = str(onnx["digest"]), str(onnx["path"])
        c.save_profile(f"{prefix}-profile", project=project, dataset=ledger)
        ids["upload"] = str(
            c.post(f"/projects/{project}/uploads", {"sha256": secrets.token_hex(32), "size": 10})[
                "upload_id"
            ]
        )
    return ids


def _seed_jobs(c: Client, project: str, prefix: str, ids: dict[str, str]) -> None:
    ids["job"] = str(c.materialize(project=project)["id"])
    retrieved = c.retrieve(
        f"{prefix}-training",
        features=[f"{prefix}stats:spend"],
        entity_dataset=f"{prefix}-visits",
        project=project,
    )
    ids["retrieval"] = str(retrieved["id"])
    started = c.submit_pipeline(NUMBERS, project=project, params={"rows": 20})
    ended = c.wait_pipeline_run(started["id"], timeout=120)
    ids["pipeline_run"] = str(ended["id"])
    ids["step"] = str(ended["steps"][0]["step"])


def _seed_b_governance(world: World, ids: dict[str, str]) -> None:
    """What B's approver, release manager and owner add: approval, alias, card, deployment,
    policies, a token and a break-glass request."""
    with world.http("zq-bob") as bob:
        ok(bob.post("/api/v1/models/zq-model:1/approvals", json={"comment": "zq-fine"}))
    with world.http("zq-bea") as bea:
        ok(bea.put("/api/v1/models/zq-model/aliases/champion", json={"version": 1}))
        ok(bea.put("/api/v1/models/zq-model:1/card", json={"markdown": "# zq-card"}))
    with world.client("zq-bea") as c:
        c.create_deployment("zq-deploy", {"zq-model:1": 1}, project=B)
    with world.http("zq-boss") as boss:
        policy = "version: 1\nprotected_aliases: [zqalias]\nrequires:\n  approvals: 1\n"
        ok(boss.put(f"/api/v1/projects/{B}/release-policy", json={"text": policy}))
        ok(boss.patch(f"/api/v1/projects/{B}/code-policy", json={"allow": ["math"], "reason": "x"}))
        ok(boss.post("/api/v1/gate-policies", json={"text": STRICT, "project": B}))
        made = ok(boss.post("/api/v1/tokens", json={"principal": "zq-bea", "project": B}))
        ids["token"] = str(made["info"]["token_id"])
    with world.http("zq-bea") as bea:
        asked = ok(
            bea.post(
                "/api/v1/models/zq-model/break-glass",
                json={"version": 1, "alias": "zqalias", "reason": REASON},
            )
        )
        ids["break_glass"] = str(asked["id"])
        alert = {"name": "zqDriftHigh", "labels": {"model": "zq-model"}, "severity": "critical"}
        ok(bea.post(f"/api/v1/projects/{B}/alerts", json={"alerts": [alert]}))
        [fired] = ok(bea.get(f"/api/v1/projects/{B}/alerts"))["alerts"]
        ids["fingerprint"] = str(fired["fingerprint"])
        [incident] = ok(bea.get("/api/v1/incidents", params={"project": B}))["incidents"]
        ids["incident"] = str(incident["number"])
        ok(bea.put(f"/api/v1/projects/{B}/slos/zq-slo", json=SLO_BODY))
        monitor = {"deployment": "zq-deploy", "every": "1h"}
        ok(bea.post(f"/api/v1/projects/{B}/monitors", json=monitor))
        ok(bea.post(f"/api/v1/projects/{B}/monitors/run", json={"deployment": "zq-deploy"}))


def ok(response: httpx.Response) -> Any:
    assert response.is_success, f"seeding failed: {response.request.url} {response.text}"
    return response.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("tenancy")
    with init_home(load_settings(home=root / "home")) as platform:
        admin = platform.admin()
        for project in (A, B):
            create_project(platform, admin, project)
        builder = ["data_engineer", "data_scientist", "release_manager", "sre"]
        people = {
            "zq-bea": (builder, B),
            "zq-bob": (["model_approver"], B),
            "zq-boss": (["project_admin", "model_approver"], B),
            "al-eng": (builder, A),
            "al-dee": (["data_scientist"], A),
            "al-ada": (["project_admin"], A),
            "al-aud": (["auditor"], A),
        }
        tokens = {
            name: mint(platform, name, roles, project=project, bind_on=project)
            for name, (roles, project) in people.items()
        }
        create_principal(platform, admin, "zq-team", kind="group")
        add_group_member(platform, admin, "zq-team", "zq-bea")
        bind_role(platform, admin, "group:zq-team", "viewer", project=B)
        server = ServerProcess(
            platform.settings.home,
            ("server",),
            "/health",
            root / "server.log",
            env={"GHAF_PIPELINES": json.dumps([NUMBERS])},
        ).start()
        try:
            world = World(platform, server, tokens, {}, {})
            (root / "b").mkdir()
            (root / "a").mkdir()
            world.ids = _seed_tenant(world, "zq-bea", B, "zq", root / "b")
            _seed_b_governance(world, world.ids)
            world.ids.update(
                {
                    f"a_{k}": v
                    for k, v in _seed_tenant(
                        world, "al-eng", A, "al", root / "a", jobs=False
                    ).items()
                }
            )
            world.markers = _markers(world.ids)
            yield world
        finally:
            log = server.stop()
        assert "Traceback" not in log, log


def _markers(ids: Mapping[str, str]) -> dict[str, str]:
    """B's marker strings, each with a twin of the same shape that names nothing."""
    markers = {
        value: secrets.token_hex(len(value) // 2) if re.fullmatch(r"[0-9a-f]{16,}", value) else ""
        for key, value in ids.items()
        if not key.startswith("a_") and key not in ("model_path", "step")
    }
    markers = {k: v or f"9{secrets.randbelow(10**6):06d}" for k, v in markers.items()}
    markers[ids["incident"]] = "INC0999999"
    for name in ("zq",):  # every B name, principal and project carries it
        markers[name] = "vq"
    return markers


def _calls(ids: Mapping[str, str]) -> dict[str, list[Call]]:
    """Each operation of the API, aimed at B: ``METHOD /path`` -> the calls to make."""
    run, prun, step = ids["run"], ids["pipeline_run"], ids["step"]
    a_run = ids["a_run"]
    batch = _parquet_bytes()
    taken = "taken"
    return {
        "GET /projects": [Call()],
        "POST /projects": [Call(json={"name": B})],
        "GET /projects/{name}": [Call({"name": B})],
        "GET /experiments": [Call()],
        "POST /experiments": [
            Call(json={"name": "zq-exp2", "project": B}),
            Call(json={"name": "zq-exp", "project": A}, claims=taken),
        ],
        "POST /runs": [
            Call(json={"experiment": "zq-exp", "project": B}),
            Call(json={"experiment": "zq-exp", "project": A}, claims=taken),
            Call(json={"experiment": "al-exp", "project": A, "parent_run_id": run}),
        ],
        "GET /runs": [
            Call(),
            Call(query={"experiment": "zq-exp"}),
            Call(query={"filter": f"attributes.run_id = '{run}'"}),
            Call(query={"filter": "attributes.experiment = 'zq-exp'"}),
            Call(query={"filter": "attributes.user = 'zq-bea'"}),
        ],
        "POST /runs/{run_id}/batch": [
            Call(
                {"run_id": run},
                json={
                    "metrics": {"key": ["auc"], "value": [0.1], "step": [1], "timestamp": [1.0]},
                    "params": {"p": "1"},
                },
            )
        ],
        "POST /runs/{run_id}/inputs": [
            Call({"run_id": run}, json={"nodes": ["dataset:al-ledger:1"]}),
            Call({"run_id": a_run}, json={"nodes": ["dataset:zq-ledger:1"]}),
            Call({"run_id": a_run}, json={"nodes": ["feature_view:zqstats:1"]}),
        ],
        "POST /runs/{run_id}/end": [Call({"run_id": run}, json={"status": "failed"})],
        "GET /runs/{run_id}": [Call({"run_id": run}), Call({"run_id": run[:12]})],
        "GET /models": [Call()],
        "POST /models": [
            Call(json={"name": "zq-model", "project": B, "files": {"m": ids["a_model_digest"]}}),
            Call(
                json={
                    "name": "al-stolen",
                    "project": A,
                    "files": {ids["model_path"]: ids["model_digest"]},
                }
            ),
            Call(
                json={
                    "name": "al-stolen",
                    "project": A,
                    "files": {"notes.txt": ids["run_artifact_digest"]},
                }
            ),
            Call(
                json={
                    "name": "al-model",
                    "project": A,
                    "files": {ids["a_model_path"]: ids["a_model_digest"]},
                    "run_id": run,
                }
            ),
            Call(
                json={
                    "name": "al-model",
                    "project": A,
                    "files": {ids["a_model_path"]: ids["a_model_digest"]},
                    "lineage": ["dataset:zq-ledger:1"],
                }
            ),
            Call(
                json={
                    "name": "zq-model",
                    "project": A,
                    "files": {ids["a_model_path"]: ids["a_model_digest"]},
                },
                claims=taken,
            ),
        ],
        "GET /models/{name}/versions": [Call({"name": "zq-model"})],
        "GET /models/{ref}": [
            Call({"ref": "zq-model:1"}),
            Call({"ref": "zq-model@champion"}),
            Call({"ref": "zq-model"}),
            Call({"ref": "zq-model:99"}),  # a missing version of B's model: a missing model
            Call({"ref": "zq-model@nope"}),
        ],
        "PUT /models/{name}/aliases/{alias}": [
            Call({"name": "zq-model", "alias": "zqcanary"}, json={"version": 1})
        ],
        "DELETE /models/{name}/aliases/{alias}": [Call({"name": "zq-model", "alias": "champion"})],
        "POST /models/{ref}/approvals": [Call({"ref": "zq-model:1"}, json={"comment": "x"})],
        "POST /models/{ref}/stage": [Call({"ref": "zq-model:1"}, json={"stage": "staging"})],
        "PUT /models/{ref}/card": [Call({"ref": "zq-model:1"}, json={"markdown": "# x"})],
        "POST /projects/{project}/artifacts": [Call({"project": B}, content=b"zq bytes")],
        "GET /models/{ref}/files": [Call({"ref": "zq-model:1"})],
        "GET /models/{ref}/file": [
            Call({"ref": "zq-model:1"}, query={"path": ids["model_path"]}),
            Call({"ref": "zq-model@champion"}, query={"path": ids["model_path"]}),
        ],
        "POST /runs/{run_id}/artifacts": [
            Call({"run_id": run}, json={"files": {"x.txt": ids["a_run_artifact_digest"]}}),
            Call({"run_id": a_run}, json={"files": {"x.txt": ids["run_artifact_digest"]}}),
            Call({"run_id": a_run}, json={"files": {"m.bin": ids["model_digest"]}}),
            Call({"run_id": a_run}, json={"files": {"d.bin": ids["upload_digest"]}}),
        ],
        "GET /runs/{run_id}/artifacts": [Call({"run_id": run})],
        "GET /runs/{run_id}/artifact": [Call({"run_id": run}, query={"path": "notes.txt"})],
        "POST /projects/{project}/uploads": [
            Call({"project": B}, json={"sha256": ids["upload_digest"], "size": 10}),
            Call({"project": A}, json={"sha256": ids["upload_digest"], "size": 10}),
            Call({"project": A}, json={"sha256": ids["model_digest"], "size": 10}),
        ],
        "GET /projects/{project}/uploads/{upload_id}": [
            Call({"project": B, "upload_id": ids["upload"]}),
            Call({"project": A, "upload_id": ids["upload"]}),
        ],
        "PUT /projects/{project}/uploads/{upload_id}": [
            Call({"project": B, "upload_id": ids["upload"]}, content=b"0123456789"),
            Call({"project": A, "upload_id": ids["upload"]}, content=b"0123456789"),
        ],
        "DELETE /projects/{project}/uploads/{upload_id}": [
            Call({"project": B, "upload_id": ids["upload"]}),
            Call({"project": A, "upload_id": ids["upload"]}),
        ],
        "POST /projects/{project}/uploads/{upload_id}/complete": [
            Call({"project": B, "upload_id": ids["upload"]}),
            Call({"project": A, "upload_id": ids["upload"]}),
        ],
        "GET /whoami": [Call()],
        "POST /tokens": [
            Call(json={"principal": "zq-bea", "project": B}),
            Call(json={"principal": "al-dee", "project": B}),
        ],
        "GET /tokens": [
            Call(),
            Call(query={"project": B}),
            Call(query={"principal": "zq-bea"}),
        ],
        "DELETE /tokens/{token_id}": [Call({"token_id": ids["token"]})],
        "GET /roles": [Call(), Call(query={"project": B}), Call(query={"subject": "zq-bea"})],
        "POST /roles": [
            Call(json={"subject": "al-dee", "role": "viewer", "project": B}),
            Call(json={"subject": "zq-bea", "role": "viewer", "project": B}),
        ],
        "DELETE /roles": [
            Call(query={"subject": "zq-bea", "role": "data_scientist", "project": B}),
        ],
        "GET /principals": [Call(), Call(query={"kind": "group"})],
        "POST /principals": [Call(json={"name": "zq-new"})],
        "POST /groups/{group}/members": [
            Call({"group": "zq-team"}, json={"member": "al-dee"}),
        ],
        "GET /audit/records": [Call(), Call(query={"project": B})],
        "GET /audit/verify": [Call()],
        "GET /compliance/report": [Call(), Call(query={"since": "3650d"})],
        "POST /audit/checkpoints": [Call()],
        "GET /audit/sinks": [Call()],
        "POST /audit/sinks/ship": [Call()],
        "GET /datasets": [Call()],
        "GET /datasets/{name}/versions": [Call({"name": "zq-ledger"})],
        "POST /datasets/{name}/versions": [
            Call(
                {"name": "zq-ledger"},
                json={"project": B, "upload": _up(ids["a_upload_digest"]), "source": "x"},
            ),
            Call(
                {"name": "al-stolen"},
                json={"project": A, "upload": _up(ids["upload_digest"]), "source": "x"},
            ),
            Call(
                {"name": "al-stolen"},
                json={"project": A, "upload": _up(ids["dataset_digest"]), "source": "x"},
            ),
            Call(
                {"name": "al-ledger"},
                json={
                    "project": A,
                    "upload": _up(ids["a_upload_digest"]),
                    "source": "x",
                    "inputs": ["dataset:zq-ledger:1"],
                },
            ),
            Call(
                {"name": "zq-ledger"},
                json={"project": A, "upload": _up(ids["a_upload_digest"]), "source": "x"},
                claims=taken,
            ),
        ],
        "GET /datasets/{ref}": [Call({"ref": "zq-ledger:1"}), Call({"ref": "zq-ledger"})],
        "GET /datasets/{ref}/diff/{other}": [
            Call({"ref": "zq-ledger:1", "other": "zq-ledger:2"}),
            Call({"ref": "al-ledger:1", "other": "zq-ledger:1"}),
        ],
        "GET /datasets/{ref}/rows": [Call({"ref": "zq-ledger:1"})],
        "GET /datasets/{ref}/validation": [Call({"ref": "zq-ledger:1"})],
        "GET /lineage/{node}": [
            Call({"node": "dataset:zq-ledger:1"}),
            Call({"node": "dataset:zq-derived:1"}),
            Call({"node": "model:zq-model:1"}),
            Call({"node": f"run:{run}"}),
        ],
        "GET /openlineage/events": [
            Call(),
            Call(query={"project": B}),
            Call(query={"dataset": "zq-ledger"}),
        ],
        "POST /datasets/{name}/ingest": [
            Call({"name": "zq-ledger"}, json={"project": B, "upload": _up(ids["a_upload_digest"])}),
            Call({"name": "al-stolen"}, json={"project": A, "upload": _up(ids["upload_digest"])}),
        ],
        "POST /datasets/{name}/records": [
            Call(
                {"name": "zq-ledger"},
                json={"project": B, "records": [{"amount": 1.0, "country": "ae"}], "keys": ["k"]},
            ),
            Call(
                {"name": "zq-ledger"},
                json={"project": A, "records": [{"amount": 1.0, "country": "ae"}], "keys": ["k"]},
                claims=taken,
            ),
        ],
        "POST /datasets/{name}/transform": [
            Call(
                {"name": "zq-new"},
                json={"project": B, "inputs": {"t": "zq-ledger"}, "sql": "SELECT * FROM t"},
            ),
            Call(
                {"name": "al-new"},
                json={"project": A, "inputs": {"t": "zq-ledger:1"}, "sql": "SELECT * FROM t"},
            ),
            Call(
                {"name": "zq-ledger"},
                json={"project": A, "inputs": {"t": "al-ledger:1"}, "sql": "SELECT * FROM t"},
                claims=taken,
            ),
        ],
        "GET /features/definitions": [
            Call(),
            Call(query={"project": B}),
            Call(query={"kind": "feature_view"}),
        ],
        "POST /features/definitions": [
            Call(json={"definitions": _features("zq", "zq-stats"), "project": B}),
            Call(json={"definitions": _features("al2", "zq-stats"), "project": A}),
            Call(json={"definitions": _features("zq", "al-stats"), "project": A}, claims=taken),
        ],
        "GET /features/views/{name}": [Call({"name": "zqstats"})],
        "GET /features/entities/{name}": [Call({"name": "zqcustomer"})],
        "GET /features/services/{name}": [Call({"name": "zqservice"})],
        "POST /features/materializations": [
            Call(json={"project": B}),
            Call(json={"project": A, "views": ["zqstats"]}),
        ],
        "POST /features/retrievals": [
            Call(
                json={
                    "name": "al-ts",
                    "project": A,
                    "features": ["zqstats:spend"],
                    "entities": {"dataset": "al-visits"},
                }
            ),
            Call(
                json={
                    "name": "al-ts",
                    "project": A,
                    "features": ["alstats:spend"],
                    "entities": {"dataset": "zq-visits"},
                }
            ),
            Call(
                json={
                    "name": "al-ts",
                    "project": A,
                    "features": ["alstats:spend"],
                    "entities": {"upload": _up(ids["upload_digest"])},
                }
            ),
            Call(
                json={
                    "name": "zq-ts",
                    "project": B,
                    "feature_service": "zqservice",
                    "entities": {"dataset": "zq-visits"},
                }
            ),
        ],
        "GET /features/jobs": [Call()],
        "GET /features/jobs/{job_id}": [Call({"job_id": ids["job"]})],
        "GET /features/jobs/{job_id}/result": [Call({"job_id": ids["retrieval"]})],
        "GET /pipelines": [Call()],
        "POST /pipeline-runs": [Call(json={"pipeline": NUMBERS, "project": B})],
        "GET /pipeline-runs": [Call(), Call(query={"pipeline": "numbers"})],
        "GET /pipeline-runs/{run_id}": [Call({"run_id": prun}), Call({"run_id": prun[:12]})],
        "GET /pipeline-runs/{run_id}/steps/{step}/log": [Call({"run_id": prun, "step": step})],
        "POST /pipeline-runs/{run_id}/cancel": [Call({"run_id": prun})],
        "POST /pipeline-runs/{run_id}/finish": [
            Call({"run_id": prun}, json={"status": "failed", "error": "x"})
        ],
        "POST /pipeline-runs/{run_id}/steps/{step}": [
            Call({"run_id": prun, "step": step}, json={"status": "running"})
        ],
        "GET /deployments": [Call(), Call(query={"project": B})],
        "POST /deployments": [
            Call(json={"name": "zq-deploy2", "project": B, "models": {"zq-model:1": 1}}),
            Call(json={"name": "al-deploy", "project": A, "models": {"zq-model:1": 1}}),
            Call(
                json={
                    "name": "al-deploy",
                    "project": A,
                    "models": {"al-model:1": 1},
                    "shadow": "zq-model:1",
                }
            ),
            Call(
                json={"name": "zq-deploy", "project": A, "models": {"al-model:1": 1}}, claims=taken
            ),
        ],
        "GET /deployments/{name}": [Call({"name": "zq-deploy"})],
        "PATCH /deployments/{name}": [
            Call({"name": "zq-deploy"}, json={"models": {"zq-model:1": 1}}),
            Call({"name": "zq-deploy"}, json={"models": {"al-model:1": 1}}),
        ],
        "POST /projects/{project}/profiles": [
            Call({"project": B}, json={"name": "zq-profile2", "dataset": "zq-ledger"}),
            Call({"project": A}, json={"name": "al-profile2", "dataset": "zq-ledger"}),
            Call({"project": A}, json={"name": "zq-profile", "dataset": "al-ledger"}, claims=taken),
        ],
        "POST /projects/{project}/profiles/{name}/data": [
            Call({"project": B, "name": "zq-profile"}, content=batch),
            Call({"project": A, "name": "zq-profile"}, content=batch, claims=taken),
        ],
        "GET /profiles": [Call(), Call(query={"name": "zq-profile"})],
        "GET /profiles/{ref}": [Call({"ref": "zq-profile"}), Call({"ref": "zq-profile@1"})],
        "POST /drift": [
            Call(json={"reference": "profile:zq-profile", "current": "al-ledger:1"}),
            Call(json={"reference": "profile:al-profile", "current": "zq-ledger:1"}),
            Call(json={"reference": "zq-ledger:1", "current": "zq-ledger:2"}),
        ],
        "POST /drift/batch": [Call(query={"reference": "profile:zq-profile"}, content=batch)],
        "GET /keys": [Call()],
        "POST /keys/rotate": [Call()],
        "DELETE /keys/versions/{version}": [Call({"version": "1"})],
        "POST /keys/trusted": [
            Call(json={"pem": "-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n"})
        ],
        "GET /projects/{project}/release-policy": [Call({"project": B})],
        "PUT /projects/{project}/release-policy": [
            Call({"project": B}, json={"text": "version: 1\n"})
        ],
        "GET /projects/{project}/code-policy": [Call({"project": B})],
        "PATCH /projects/{project}/code-policy": [
            Call({"project": B}, json={"allow": ["os"], "reason": "x"})
        ],
        "GET /gate-policies": [Call()],
        "POST /gate-policies": [
            Call(json={"text": STRICT.replace("zq-gate", "zq-gate2"), "project": B}),
            Call(
                json={
                    "text": STRICT.replace("zq-gate", "al-gate"),
                    "project": A,
                    "model": "zq-model",
                }
            ),
        ],
        "GET /gate-policies/{ref}": [
            Call({"ref": "zq-gate"}),
            Call({"ref": "zq-gate:1"}),
            Call({"ref": "zq-gate:9"}),
        ],
        "POST /gate-policies/{ref}/attachments": [
            Call({"ref": "zq-gate"}, json={"project": A}),
            Call({"ref": "zq-gate:1"}, json={"model": "al-model"}),
        ],
        "POST /models/{name}/break-glass": [
            Call({"name": "zq-model"}, json={"version": 1, "alias": "zqalias", "reason": REASON})
        ],
        "GET /break-glass": [Call(), Call(query={"pending": True})],
        "POST /break-glass/{request_id}/confirm": [Call({"request_id": ids["break_glass"]})],
        "GET /artifact-access": [Call()],
        "GET /models/{ref}/file-grant": [
            Call({"ref": "zq-model:1"}, query={"path": ids["model_path"]})
        ],
        "GET /runs/{run_id}/artifact-grant": [Call({"run_id": run}, query={"path": "notes.txt"})],
        "POST /projects/{project}/upload-grants": [
            Call({"project": B}, json={"sha256": ids["upload_digest"], "size": 10}),
            Call({"project": A}, json={"sha256": ids["model_digest"], "size": 10}),
        ],
        "POST /projects/{project}/upload-grants/commit": [
            Call({"project": B}, json={"grant": "zq-grant"}),
        ],
        "POST /projects/{project}/upload-grants/parts": [
            Call({"project": B}, json={"grant": "zq-grant", "parts": [1]}),
        ],
        "POST /projects/{project}/upload-grants/abort": [
            Call({"project": B}, json={"grant": "zq-grant"}),
        ],
        "POST /projects/{project}/alerts": [
            Call({"project": B}, json={"alerts": [{"name": "zqOther"}]}),
        ],
        "GET /projects/{project}/alerts": [Call({"project": B})],
        "POST /projects/{project}/alerts/alertmanager": [
            Call(
                {"project": B},
                json={
                    "version": "4",
                    "status": "firing",
                    "alerts": [{"status": "firing", "labels": {"alertname": "zqOther"}}],
                },
            ),
        ],
        "POST /projects/{project}/alerts/{fingerprint}/resolve": [
            Call({"project": B, "fingerprint": ids["fingerprint"]}),
            Call({"project": A, "fingerprint": ids["fingerprint"]}),
        ],
        "POST /projects/{project}/alerts/deliver": [Call({"project": B})],
        "POST /projects/{project}/monitors": [
            Call({"project": B}, json={"deployment": "zq-deploy"}),
            Call({"project": A}, json={"deployment": "zq-deploy"}),
        ],
        "GET /projects/{project}/monitors": [Call({"project": B})],
        "POST /projects/{project}/monitors/run": [
            Call({"project": B}, json={}),
            Call({"project": B}, json={"deployment": "zq-deploy"}),
            Call({"project": A}, json={"deployment": "zq-deploy"}),
        ],
        "GET /projects/{project}/monitors/status": [
            Call({"project": B}),
            Call({"project": A}, query={"deployment": "zq-deploy"}),
        ],
        "GET /projects/{project}/monitors/{deployment}/results": [
            Call({"project": B, "deployment": "zq-deploy"}),
            Call({"project": A, "deployment": "zq-deploy"}),
        ],
        "GET /incidents": [Call(), Call(query={"project": B})],
        "GET /incidents/{number}": [Call({"number": ids["incident"]})],
        **{
            f"POST /incidents/{{number}}/{verb}": [
                Call({"number": ids["incident"]}, json={"note": "x"})
            ]
            for verb in ("ack", "hold", "resume", "resolve", "close", "cancel", "reopen")
        },
        "POST /incidents/{number}/assign": [
            Call({"number": ids["incident"]}, json={"assignee": "al-dee"})
        ],
        "POST /incidents/{number}/notes": [Call({"number": ids["incident"]}, json={"text": "x"})],
        # Costs: the report over the caller's projects, or aimed at B's; usage into B.
        "GET /cost": [Call(), Call(query={"project": B}), Call(query={"by": "deployment"})],
        "POST /projects/{project}/usage": [Call({"project": B}, json=USAGE_BODY)],
        "GET /projects/{project}/slos": [Call({"project": B})],
        "PUT /projects/{project}/slos/{name}": [
            Call({"project": B, "name": "zq-slo"}, json=SLO_BODY),
            Call({"project": A, "name": "al-slo"}, json=SLO_BODY, claims=taken),
        ],
        **{
            op: [Call({"project": B, "name": "zq-slo"}), Call({"project": A, "name": "zq-slo"})]
            for op in (
                "GET /projects/{project}/slos/{name}",
                "DELETE /projects/{project}/slos/{name}",
            )
        },
        **{
            f"POST /projects/{{project}}/slos/{{name}}/{verb}": [
                Call({"project": B, "name": "zq-slo"}, json=SLO_EVENTS),
                Call({"project": A, "name": "zq-slo"}, json=SLO_EVENTS),
            ]
            for verb in ("status", "fire")
        },
        "GET /projects/{project}/slo-rules": [
            Call({"project": B}),
            Call({"project": A}, query={"name": "zq-slo"}),
        ],
        # Retraining policies: aimed at B's project and at B's deployment from A's.
        **{
            f"{method} /projects/{{project}}/deployments/{{deployment}}/retraining": [
                Call({"project": B, "deployment": "zq-deploy"}, json=body),
                Call({"project": A, "deployment": "zq-deploy"}, json=body),
            ]
            for method, body in (("PUT", RETRAIN_BODY), ("GET", None), ("DELETE", None))
        },
        "GET /projects/{project}/retraining": [Call({"project": B})],
        # B holds no traffic experiment (seeded): these aim at B's project and deployment.
        "GET /traffic/experiments": [Call(), Call(query={"project": B})],
        "POST /traffic/experiments": [
            Call(
                json={
                    "name": "al-ab",
                    "project": A,
                    "deployment": "zq-deploy",
                    "variants": {"control": "zq-model:1", "treatment": "zq-model:1"},
                }
            ),
        ],
        "GET /traffic/experiments/{name}": [Call({"name": "zq-ab"})],
        **{
            f"POST /traffic/experiments/{{name}}/{verb}": [Call({"name": "zq-ab"})]
            for verb in ("start", "stop", "decide")
        },
        # nor a canary: these aim at B's deployment and a canary name of B's kind
        "GET /traffic/canaries": [Call(), Call(query={"project": B})],
        "POST /traffic/canaries": [
            Call(
                json={
                    "name": "al-canary",
                    "project": A,
                    "deployment": "zq-deploy",
                    "candidate": "zq-model:1",
                    "plan": {"max_error_rate": None},
                }
            ),
        ],
        "GET /traffic/canaries/{name}": [Call({"name": "zq-canary"})],
        **{
            f"POST /traffic/canaries/{{name}}/{verb}": [
                Call({"name": "zq-canary"}, json={"reason": "x"})
            ]
            for verb in ("evaluate", "pause", "resume", "rollback")
        },
        "POST /outcomes/import": [
            Call(json={"model": "zq-model", "dataset": "al-ledger", "project": A}),
            Call(json={"model": "al-model", "dataset": "zq-ledger", "project": A}),
            Call(json={"model": "zq-model", "dataset": "zq-ledger", "project": B}),
        ],
        "POST /incidents/{number}/events": [
            Call({"number": ids["incident"]}, json={"kind": "rollback"})
        ],
        # Scheduled SLOs: aimed at B's project and at B's SLO name from A's.
        "PUT /projects/{project}/slos/{name}/schedule": [
            Call({"project": B, "name": "zq-slo"}, json={"targets": ["http://127.0.0.1:9"]}),
            Call({"project": A, "name": "zq-slo"}, json={"targets": ["http://127.0.0.1:9"]}),
        ],
        "DELETE /projects/{project}/slos/{name}/schedule": [
            Call({"project": B, "name": "zq-slo"}),
            Call({"project": A, "name": "zq-slo"}),
        ],
        "GET /projects/{project}/slo-schedules": [Call({"project": B})],
        # Home-wide operations (backups, erasure, retention): refused to people of one
        # project; the job queue and quotas aimed at B's project.
        "POST /backups": [Call()],
        "GET /backups/jobs": [Call()],
        "GET /backups/jobs/{job_id}": [Call({"job_id": "0" * 32})],
        "GET /jobs": [Call(), Call(query={"project": B})],
        "POST /jobs": [Call(json={"pipeline": NUMBERS, "project": B})],
        "GET /jobs/{job_id}": [Call({"job_id": "0" * 32})],
        "POST /jobs/{job_id}/cancel": [Call({"job_id": "0" * 32})],
        "PUT /jobs/{job_id}/priority": [Call({"job_id": "0" * 32}, json={"priority": 5})],
        "GET /quotas": [Call()],
        "GET /projects/{project}/quota": [Call({"project": B})],
        "PUT /projects/{project}/quota": [Call({"project": B}, json={"gpu_hours": 1.0})],
        "DELETE /projects/{project}/quota": [Call({"project": B})],
        "POST /erasure/subject": [Call(json={"key_column": "customer_id", "value": "zq-1"})],
        "POST /erasure/dataset": [Call(json={"dataset": "zq-ledger"})],
        "GET /erasure/certificates": [Call()],
        "GET /erasure/certificates/{certificate}": [Call({"certificate": "0" * 32})],
        "GET /erasure/certificates/{certificate}/verify": [Call({"certificate": "0" * 32})],
        "POST /retention/run": [Call(json={"dry_run": True})],
        "GET /retention": [Call()],
    }


def _up(digest: str) -> dict[str, str]:
    """An upload reference: a file of that digest uploaded to the body's project."""
    return {"filename": "ledger.parquet", "digest": digest}


def _parquet_bytes() -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(_frame(99), sink)
    return bytes(sink.getvalue().to_pybytes())


def _operations(world: World) -> list[str]:
    api = create_app(world.platform).app
    paths = api.openapi()["paths"]
    prefix = "/api/v1"
    return [f"{m.upper()} {p.removeprefix(prefix)}" for p, ms in paths.items() for m in ms]


def test_every_operation_has_calls_aimed_at_the_other_tenant(world: World) -> None:
    table = _calls(world.ids)
    missing = [op for op in _operations(world) if op not in table]
    assert not missing, (
        f"these operations have no cross-tenant call: {missing}; add to _calls in "
        "tests/unit/server/test_cross_tenant.py how each reaches project B's things"
    )
    stale = set(table) - set(_operations(world))
    assert not stale, f"_calls names operations the API no longer has: {sorted(stale)}"


@dataclass
class Answer:
    status: int
    text: str
    headers: dict[str, str]


def _swap(value: Any, swap: Mapping[str, str]) -> Any:
    """``value`` with B's markers replaced: a short id only as a whole value, a name or a
    long id wherever it occurs (``dataset:zq-ledger:1``, ``run:ID``)."""
    if isinstance(value, str):
        if value in swap:
            return swap[value]
        for old, new in swap.items():
            if len(old) >= 8 or old == "zq":
                value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_swap(v, swap) for v in value]
    if isinstance(value, dict):
        return {_swap(k, swap): _swap(v, swap) for k, v in value.items()}
    return value


def _send(http: httpx.Client, op: str, call: Call, swap: Mapping[str, str]) -> Answer:
    """Send ``call`` with each marker of ``swap`` replaced by what it maps to."""

    def sub(value: Any) -> Any:
        return _swap(value, swap)

    method, template = op.split(" ", 1)
    path = template
    for key, value in call.path.items():
        path = path.replace("{" + key + "}", quote(sub(str(value)), safe=":@"))
    query = sub(dict(call.query))
    kwargs: dict[str, Any] = {"params": query}
    if call.json is not None:
        kwargs["json"] = sub(call.json)
    elif call.content is not None:
        kwargs["content"] = call.content
        kwargs["headers"] = {"content-type": "application/octet-stream"}
    response = http.request(method, "/api/v1" + path, **kwargs)
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE_HEADERS}
    text = response.text
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        body = response.json()
        body.pop("request_id", None)
        text = json.dumps(body, sort_keys=True)
    return Answer(response.status_code, text, headers)


_MARKED = {
    "upload_digest", "dataset_digest", "job", "retrieval", "run", "run_artifact_digest",
    "model_digest", "pipeline_run", "upload", "token", "break_glass", "fingerprint", "incident",
}  # fmt: skip
"""B's ids that name B's things (a step name or a file name is the code's, not B's)."""


def _traces(text: str, ids: Mapping[str, str]) -> set[str]:
    """B's marker strings in ``text``: its names (all carry ``zq``) and ids."""
    found = set(re.findall(r"zq[\w.:@/-]*", text))
    found |= {v for k, v in ids.items() if k in _MARKED and len(v) >= 8 and v in text}
    return found


def _check(world: World, who: str) -> list[str]:
    """Every call of the table as ``who``: the leaks found, one line each."""
    leaks: list[str] = []
    twin = world.markers
    back = {v: k for k, v in twin.items()}
    with world.http(who) as http:
        for op, calls in _calls(world.ids).items():
            for call in calls:
                got = _send(http, op, call, {})
                sent = json.dumps([call.path, call.query, call.json])
                where = f"{who}: {op} {sent}"
                if got.status >= 500:
                    leaks.append(f"{where}: {got.status} {got.text}")
                    continue
                if 200 <= got.status < 300:
                    shown = _traces(got.text + json.dumps(got.headers), world.ids)
                    shown -= _traces(sent, world.ids)
                    if shown:
                        leaks.append(f"{where}: {got.status} shows {sorted(shown)}")
                    continue
                if got.status == 409 and call.claims:
                    continue  # checked by the names test: the one S3-style answer
                if got.status in (401, 429):
                    leaks.append(f"{where}: {got.status} {got.text}")
                    continue
                other = _send(http, op, call, twin)
                seen = Answer(other.status, other.text, other.headers)
                for new, old in back.items():
                    seen.text = seen.text.replace(new, old)
                if (seen.status, seen.text) != (got.status, got.text):
                    leaks.append(
                        f"{where}: {got.status} {got.text} but for a made-up twin "
                        f"{other.status} {other.text}"
                    )
    return leaks


@pytest.mark.parametrize("who", ["al-dee", "al-ada", "al-aud"])
def test_a_principal_of_a_sees_nothing_of_b_through_any_route(world: World, who: str) -> None:
    leaks = _check(world, who)
    assert not leaks, f"{len(leaks)} leaks:\n" + "\n".join(leaks)


def test_a_principal_of_a_still_sees_a_s_own_things(world: World) -> None:
    """The other side of the suite: A's people read A's things through the same routes
    (so a route that answered 404 to everyone would fail here)."""
    ids = world.ids
    with world.http("al-dee") as dee:
        listed = dee.get("/api/v1/datasets").json()["datasets"]
        assert {d["name"] for d in listed} >= {"al-ledger", "al-derived"}
        model = dee.get("/api/v1/models/al-model:1")
        assert (model.status_code, model.json()["project"]) == (200, A), model.text
        onnx = dee.get("/api/v1/models/al-model:1/file", params={"path": ids["a_model_path"]})
        assert hashlib.sha256(onnx.content).hexdigest() == ids["a_model_digest"]
        runs = dee.get("/api/v1/runs", params={"experiment": "al-exp"}).json()["runs"]
        assert [r["run_id"] for r in runs] == [ids["a_run"]]
        notes = dee.get(f"/api/v1/runs/{ids['a_run']}/artifact", params={"path": "notes.txt"})
        assert notes.text == "al notes\n"
        lineage = dee.get("/api/v1/lineage/dataset:al-ledger:1")
        assert lineage.status_code == 200 and "al-derived" in lineage.text, lineage.text
        profiles = dee.get("/api/v1/profiles").json()["profiles"]
        assert [p["name"] for p in profiles] == ["al-profile"]
    with world.http("al-aud") as aud:
        audit = aud.get("/api/v1/audit/records", params={"project": A})
        assert audit.status_code == 200, audit.text
        assert "al-eng" in audit.text
        callers = {"al-dee", "al-ada", "al-aud"}  # their own attempts at B are A's records
        for line in audit.text.splitlines():
            if json.loads(line)["actor"] not in callers:
                assert not _traces(line, ids), line


TAKEN = re.compile(
    r"^[a-z ]+ name '(zq[\w.-]*)' is taken in this home; "
    r"names are unique across projects: choose another$"
)


def test_a_name_b_holds_is_refused_in_a_with_one_answer_that_names_no_project(
    world: World,
) -> None:
    """Names are unique across a home: claiming one that B holds is a 409 that says the
    name is taken, in the same words from every route, and nothing of whose it is."""
    claims = [(op, c) for op, calls in _calls(world.ids).items() for c in calls if c.claims]
    assert len(claims) >= 8
    with world.http("al-eng") as eng:  # may write all of these in A
        for op, call in claims:
            got = _send(eng, op, call, {})
            assert got.status == 409, (op, call, got.text)
            title = json.loads(got.text)["title"]
            assert TAKEN.match(title), (op, title)
            assert B not in got.text and "another project" not in got.text, got.text
