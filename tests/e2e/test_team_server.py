"""A team on one ``ghaf server``: PostgreSQL, the S3 emulator, NATS and the real
``oidc-provider`` behind it, and client processes that hold a URL and an OIDC token only.

The demo's lifecycle, each step from its own person's machine: Dana (a data engineer)
ingests a CSV; Alice (a data scientist) tracks a run that reads that version, keeps a
file as its artifact and registers a model; Ben (an approver) approves it; Remy (a
release manager) makes it the champion, downloads it byte for byte and deploys it; Sam
(an SRE) saves a reference profile of the data and checks it for drift. No client
environment holds a database URL, a key or a path to the home, and the audit trail names
each person as their provider proved them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from ghaf.access.audit import verify_trail
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.oidc import client_credentials_token
from ghaf.settings import IdentitySettings, load_settings
from tests.integration.oidc_support import AUDIENCE, SECRET, run_provider
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow

GROUPS = {
    "dana": ["ml-data"],
    "alice": ["ml-scientists"],
    "ben": ["ml-approvers"],
    "remy": ["ml-release"],
    "sam": ["ml-sre"],
}
ROLE_MAPPING = {
    "ml-data": ["fraud:data_engineer"],
    "ml-scientists": ["fraud:data_scientist"],
    "ml-approvers": ["fraud:model_approver"],
    "ml-release": ["fraud:release_manager"],
    "ml-sre": ["fraud:sre"],
}
SECRETS = ("GHAF_METADATA_URL", "GHAF_HOME")
"""Server-side values no client file may contain (the database URL, the home's path)."""

CLIENT = r"""
import json, os, sys
from pathlib import Path
import ghaf

step, args = sys.argv[1], json.loads(sys.argv[2])
assert not [k for k in os.environ if k.startswith("GHAF_") and k not in ("GHAF_URL", "GHAF_TOKEN")]
client = ghaf.connect()
if step == "ingest":
    made = client.ingest(args["csv"], "transactions", project="fraud")
    print(json.dumps({"version": made["version"]}))
elif step == "train":
    with client.start_run("churn", project="fraud") as run:
        run.log_input(args["input"])
        for i in range(1000):
            run.log_metric("loss", 1.0 / (i + 1))
        run.log_params({"C": 1.0})
        notes = Path(args["notes"])
        notes.write_text("trained on " + args["input"])
        run.log_artifact(notes)
    made = client.register_model("churn", args["model"], project="fraud", run_id=run.run_id)
    print(json.dumps({"run_id": run.run_id, "version": made["version"]}))
elif step == "approve":
    print(json.dumps(client.post(f"/models/churn:{args['version']}/approvals", {"comment": "ok"})))
elif step == "release":
    body = {"version": args["version"]}
    moved = client.request("PUT", "/models/churn/aliases/champion", json=body)
    path = client.download_model("churn@champion", args["dest"])
    deployed = client.create_deployment(
        "churn-live", {f"churn:{args['version']}": 1.0}, project="fraud"
    )
    print(json.dumps({"aliases": moved["aliases"], "path": str(path), "deployed": deployed}))
elif step == "monitor":
    client.save_profile("transactions-ref", project="fraud", dataset=args["dataset"])
    report = client.check_drift("profile:transactions-ref", args["dataset"])
    print(json.dumps(report))
"""


def _client(url: str, token: str, tmp: Path, step: str, **args: Any) -> dict[str, Any]:
    """Run one step as a client machine: only PATH, a scratch HOME, GHAF_URL, GHAF_TOKEN."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp),
        "GHAF_URL": url,
        "GHAF_TOKEN": token,
    }
    script = tmp / "client.py"
    script.write_text(CLIENT)
    done = subprocess.run(
        [sys.executable, str(script), step, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture
def team_server(
    tmp_path: Path,
    postgres_url: str,
    s3_endpoint: str,
    nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Platform, str, dict[str, str]]]:
    import boto3  # type: ignore[import-untyped]

    bucket = f"ghaf-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "me-central-1"})
    with run_provider(tmp_path / "provider", GROUPS) as provider:
        server_env = {
            "GHAF_HOME": str(tmp_path / "home"),
            "GHAF_METADATA_URL": postgres_url,
            "GHAF_ARTIFACT_URL": f"s3://{bucket}/ghaf",
            "GHAF_ARTIFACT_REGION": "me-central-1",
            "GHAF_S3_ENDPOINT_URL": s3_endpoint,
            "GHAF_EVENT_BUS_URL": nats_url,
            "GHAF_IDENTITY__ISSUER": provider.issuer,
            "GHAF_IDENTITY__AUDIENCE": AUDIENCE,
            "GHAF_IDENTITY__ROLE_MAPPING": json.dumps(ROLE_MAPPING),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        owner_env = {**os.environ, **server_env}
        for command in (["init"], ["projects", "create", "fraud"]):
            done = subprocess.run(
                [sys.executable, "-m", "ghaf", *command],
                env=owner_env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, done.stderr
        server = ServerProcess(
            tmp_path / "home", ("server",), "/health/ready", tmp_path / "server.log", env=server_env
        ).start()
        for key, value in server_env.items():  # this process reads the trail as the server
            monkeypatch.setenv(key, value)
        platform = Platform(load_settings())
        tokens = {
            person: client_credentials_token(
                IdentitySettings(
                    issuer=provider.issuer,
                    audience=AUDIENCE,
                    client_id=person,
                    client_secret=SecretStr(SECRET),
                )
            )
            for person in GROUPS
        }
        try:
            yield platform, server.url, tokens
        finally:
            log = server.stop()
            platform.close()
        assert "Traceback" not in log


def test_three_people_release_a_model_through_the_server(
    team_server: tuple[Platform, str, dict[str, str]], tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    platform, url, tokens = team_server
    x = np.random.default_rng(7).normal(size=(60, 3))
    model_dir = tmp_path / "alice" / "model"
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), model_dir)
    machines = {name: tmp_path / name for name in GROUPS}
    for machine in machines.values():
        machine.mkdir(exist_ok=True)

    csv = machines["dana"] / "transactions.csv"
    rng = np.random.default_rng(11)
    rows = ["account,amount,merchant"] + [
        f"a{i % 50},{rng.gamma(2.0, 40.0):.2f},m{i % 7}" for i in range(2000)
    ]
    csv.write_text("\n".join(rows) + "\n")
    ingested = _client(url, tokens["dana"], machines["dana"], "ingest", csv=str(csv))
    dataset = f"transactions:{ingested['version']}"
    trained = _client(
        url,
        tokens["alice"],
        machines["alice"],
        "train",
        model=str(model_dir),
        input=f"dataset:{dataset}",
        notes=str(machines["alice"] / "notes.txt"),
    )
    approved = _client(url, tokens["ben"], machines["ben"], "approve", version=trained["version"])
    assert approved["approvals"] == ["ben"]
    dest = machines["remy"] / "champion"
    released = _client(
        url, tokens["remy"], machines["remy"], "release", version=trained["version"], dest=str(dest)
    )
    assert "champion" in released["aliases"]
    assert released["deployed"]["name"] == "churn-live"
    drift = _client(url, tokens["sam"], machines["sam"], "monitor", dataset=dataset)
    assert drift["columns"] and drift["drifted_columns"] == []  # the same data: no drift
    for original in model_dir.rglob("*"):
        if original.is_file():
            copy = dest / original.relative_to(model_dir)
            assert copy.read_bytes() == original.read_bytes(), original.name

    with platform.read_session() as session:
        records = list(
            session.execute(
                select(AuditRecordRow).where(AuditRecordRow.outcome == "allowed")
            ).scalars()
        )
    done_by = {(r.action, r.actor) for r in records}
    assert {("run.create", "alice"), ("model.register", "alice")} <= done_by
    assert {("model.approve", "ben"), ("model.alias", "remy")} <= done_by
    assert {("dataset.ingest", "dana"), ("run.log_inputs", "alice")} <= done_by
    assert {("run.log_artifacts", "alice"), ("deployment.create", "remy")} <= done_by
    assert ("monitoring.profile.save", "sam") in done_by
    report = verify_trail(platform)
    assert not report.failures, [f.message for f in report.failures]
    for machine in machines.values():  # nothing a client kept names a secret of the server
        for path in machine.rglob("*"):
            if path.is_file() and path.suffix in (".json", ".py", ".txt"):
                text = path.read_text(errors="replace")
                assert not any(os.environ.get(k, "\0") in text for k in SECRETS)
