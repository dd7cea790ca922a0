"""Experiments over ``ghaf server``: each person with their own token, over real HTTP.

What people rely on: a release manager creates, starts, stops and decides; a viewer
reads but cannot change; another project's experiment reads as missing; bad input is a
400 naming the field with nothing stored; labels imported from a dataset join the
prediction log's units; the decision keeps every number it used, in the record and the
audit trail; the CLI prints the same JSON on the home and against the server.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from ghaf.client.http import connect
from ghaf.data import write_dataset
from ghaf.errors import GhafError, NotFoundError, PermissionDeniedError
from ghaf.experiments.service import (
    default_log_dir,
    experiment_status,
    get_experiment,
    list_experiments,
)
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import approve_model_version, register_model
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.serving.deployments import create_deployment, get_deployment
from ghaf.serving.predlog import PredictionBatch
from ghaf.serving.traffic import Assignment
from ghaf.testing.people import mint, person
from tests.unit.serving.server_processes import ServerProcess, ghaf

pytestmark = pytest.mark.slow


def _two_versions(platform: Platform, tmp_path: Path) -> None:
    """fraud:1 and fraud:2 in project fraud, approved by a second person, deployed."""
    from sklearn.linear_model import LogisticRegression

    fraud = platform.in_project("fraud")
    alice = person(fraud, "alice", ["data_scientist"], project="fraud")
    ben = person(fraud, "ben", ["model_approver"], project="fraud")
    x = np.random.default_rng(3).normal(size=(40, 3))
    for i in (1, 2):
        save_model(LogisticRegression(C=i).fit(x, (x[:, 0] > 0).astype(int)), tmp_path / f"m{i}")
        version = register_model(fraud, alice, "fraud", tmp_path / f"m{i}")
        approve_model_version(fraud, ben, version.ref)
    create_deployment(fraud, platform.admin(), "fraud", ["fraud:1", "fraud:2"], project="fraud")


def _serve_log(platform: Platform, salt: str, units: int = 400) -> list[str]:
    """What ``ghaf serve --log-dir HOME/predictions`` logs for ``units`` units."""
    assignment = Assignment("ab", salt, {"1": 1, "2": 1})
    names = [f"c{i}" for i in range(units)]
    records = []
    for i, unit in enumerate(names):
        variant, version = assignment.assign(unit)
        records.append(
            {"request_id": f"r{i}", "ts": float(i), "model": "fraud", "version": version,
             "variant": variant, "latency_ms": 2.0 + (i % 5), "features": np.ones((1, 3)),
             "outputs": {"p": np.array([0.5])}, "unit": unit, "experiment": "ab"}
        )  # fmt: skip
    directory = default_log_dir(platform)
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(PredictionBatch.from_records(records).to_arrow(), directory / "p-1.parquet")
    return names


def _audit(platform: Platform, action: str) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        rows = list(
            session.execute(select(AuditRecordRow).where(AuditRecordRow.action == action)).scalars()
        )
        session.expunge_all()
    return rows


def _created_during(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``call()``'s result and every directory or file it made or opened for writing,
    as Python's audit events report them."""
    created: list[str] = []
    active = [True]
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not active[0]:
            return
        if event == "os.mkdir":
            created.append(str(args[0]))
        elif event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            mode, flags = args[1], args[2]
            if (mode and any(c in mode for c in "wax+")) or (mode is None and flags & writing):
                created.append(str(args[0]))

    sys.addaudithook(hook)  # hooks cannot be removed: this one goes quiet after the call
    try:
        return call(), created
    finally:
        active[0] = False


def test_experiment_lifecycle_over_the_control_plane(platform: Platform, tmp_path: Path) -> None:
    admin = platform.admin()
    for project in ("fraud", "retail"):
        create_project(platform, admin, project)
    _two_versions(platform, tmp_path)
    tokens = {
        "remy": mint(platform, "remy", ["release_manager"], project="fraud", bind_on="fraud"),
        "vera": mint(platform, "vera", ["viewer"], project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", ["release_manager"], project="retail", bind_on="retail"),
    }
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start(timeout=300)
    try:
        remy, vera, rita = (connect(server.url, token=tokens[n]) for n in ("remy", "vera", "rita"))
        variants = {"fraud:1": 1.0, "fraud:2": 1.0}

        # bad input: a 400 naming the field, nothing stored
        with pytest.raises(GhafError, match="fraud:3"):
            remy.create_experiment("ab", "fraud", {"fraud:1": 1, "fraud:3": 1}, project="fraud")
        with pytest.raises(GhafError, match="holdout"):
            remy.create_experiment("ab", "fraud", variants, project="fraud", holdout=1.5)
        with pytest.raises(GhafError, match="unit"):
            remy.create_experiment("ab", "fraud", variants, project="fraud", unit="cookie:x")
        with pytest.raises(PermissionDeniedError):
            vera.create_experiment("ab", "fraud", variants, project="fraud")
        assert list_experiments(platform) == []

        made = remy.create_experiment("ab", "fraud", variants, project="fraud", goal="conversion")
        assert made["status"] == "draft" and made["variants"] == variants
        assert [e["name"] for e in vera.experiments()] == ["ab"]
        assert rita.experiments() == []
        with pytest.raises(NotFoundError):
            rita.experiment_status("ab")
        with pytest.raises(NotFoundError):
            rita.start_experiment("ab")

        before = get_deployment(platform, "fraud").revision
        running = remy.start_experiment("ab")
        assert running["status"] == "running"
        record = get_deployment(platform, "fraud")
        assert record.revision == before + 1 and record.routing is not None
        assert record.routing["salt"] == made["salt"] and record.routing["experiment"] == "ab"
        with pytest.raises(GhafError, match="running: it cannot become running"):
            remy.start_experiment("ab")
        with pytest.raises(GhafError, match="cannot become decided"):
            remy.decide_experiment("ab")
        status = vera.experiment_status("ab")
        assert status["analysis"] is None and "no prediction log" in status["analysis_error"]

        # serving logged units; labels arrive later as a dataset version, imported
        units = _serve_log(platform, made["salt"])
        rng = np.random.default_rng(5)
        converted = rng.random(len(units)) < 0.3
        labels = pa.table({"unit": units, "outcome": converted.astype(int),
                           "metric": ["conversion"] * len(units)})  # fmt: skip
        fraud = platform.in_project("fraud")
        version = write_dataset(fraud, admin, "labels", labels, source="test")
        assert remy.import_outcomes("fraud", f"labels:{version.version}", project="fraud") == 400
        with pytest.raises(PermissionDeniedError):
            vera.import_outcomes("fraud", f"labels:{version.version}", project="fraud")

        interim = vera.experiment_status("ab")["analysis"]
        assert interim["units"] == 400 and interim["labelled_units"] == 400

        assert remy.stop_experiment("ab")["status"] == "stopped"
        assert get_deployment(platform, "fraud").routing is None
        decided = remy.decide_experiment("ab")
    finally:
        for client in (remy, vera, rita):
            client.close()
        output = server.stop()
    assert "Traceback" not in output

    assert decided["status"] == "decided"
    analysis = decided["decision"]
    decision = analysis["decision"]
    assert decision["verdict"] in ("ship", "stop", "keep_running", "blocked")
    counts = {
        ref: sum(1 for u in units if Assignment("ab", made["salt"], {"1": 1, "2": 1}).assign(u)[0]
                 == ref.rpartition(":")[2])
        for ref in variants
    }  # fmt: skip
    assert decision["sample_sizes"] == counts
    assert analysis["srm"]["p_value"] > 0.001 and not analysis["srm"]["mismatch"]
    assert 0.0 <= decision["goal"]["p_value"] <= 1.0
    audit = _audit(platform, "traffic.experiment_decide")
    # the decide asked while it ran failed (and is on the trail too); then the real one
    assert [(r.actor, r.outcome) for r in audit] == [("remy", "failed"), ("remy", "allowed")]
    details = json.loads(audit[1].details)
    assert details["verdict"] == decision["verdict"]
    assert details["sample_sizes"] == counts
    assert get_experiment(platform.in_project("fraud"), "ab").decision == analysis

    # The analysis keeps the units in memory: the prediction log is sealed at rest, and no
    # plaintext copy of it is written anywhere (it was a Parquet file in a temp directory).
    status, created = _created_during(lambda: experiment_status(platform.in_project("fraud"), "ab"))
    assert status["analysis"]["units"] == 400 and created == []

    # the CLI on the home prints the record as the API does
    shown = ghaf(platform.settings.home, "experiments", "list", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    listed: list[dict[str, Any]] = json.loads(shown.stdout)["experiments"]
    assert [(e["name"], e["status"], e["salt"]) for e in listed] == [
        ("ab", "decided", made["salt"])
    ]
    again = ghaf(platform.settings.home, "experiments", "start", "ab")
    assert again.returncode != 0 and "decided" in again.stderr and "Traceback" not in again.stderr
