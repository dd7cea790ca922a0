"""Gate policies as data: stored and versioned, attached, enforced at promotion, on the card.

Through the doors a user has: ``ghaf gate ...`` and ``ghaf models ...`` as typed, and the
service functions for the people acting with their own credentials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ghaf.errors import PermissionDeniedError
from ghaf.platform import Platform
from ghaf.registry import (
    approve_model_version,
    gate_verdicts,
    get_model_version,
    register_model,
    transition_model_version,
)
from ghaf.registry.gate_policies import add_gate_policy, list_gate_policies
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import person

STRICT = "name: production\nmetrics:\n  auc: {min: 0.75}\n"
LENIENT = (
    "name: production\n"
    "metrics:\n"
    "  auc: {min: 0.6}\n"
    "fairness:\n"
    "  demographic_parity_difference: {max: 0.1}\n"
)
METRICS = {"auc": 0.7, "fairness.gender.demographic_parity_difference": 0.05}
POLICY_KEYS = {
    "name",
    "version",
    "latest",
    "project",
    "created_by",
    "created_at",
    "text",
    "attachments",
}
ATTACHMENT_KEYS = {
    "policy",
    "policy_version",
    "kind",
    "target",
    "project",
    "created_by",
    "created_at",
}
RULE_KEYS = {"rule", "passed", "threshold", "measured", "reason"}


def ghaf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )


def as_json(run: subprocess.CompletedProcess[str]) -> Any:
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def staged(platform: Platform, model_dir: Path) -> str:
    """fraud:1 by a data scientist, in staging, approved by a second person."""
    author = person(platform, "dana", ["data_scientist"])
    register_model(platform, author, "fraud", model_dir, metrics=METRICS)
    transition_model_version(platform, platform.admin(), "fraud:1", "staging")
    approve_model_version(platform, person(platform, "risk-officer", ["model_approver"]), "fraud:1")
    return "fraud:1"


def promote_records(platform: Platform) -> list[tuple[str, dict[str, Any]]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow.outcome, AuditRecordRow.details)
            .where(AuditRecordRow.action == "model.promote")
            .order_by(AuditRecordRow.seq)
        ).all()
    return [(outcome, json.loads(details)) for outcome, details in rows]


def test_add_list_show_and_a_new_version(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(STRICT)
    added = ghaf("gate", "policies", "add", str(path))
    assert added.returncode == 0, added.stderr
    assert "gate policy production:1 stored" in added.stdout
    # The same text again adds no version; a changed file is version 2.
    again = as_json(ghaf("gate", "policies", "add", str(path), "--output", "json"))
    assert (again["version"], again["latest"]) == (1, 1)
    path.write_text(LENIENT)
    second = as_json(ghaf("gate", "policies", "add", str(path), "-o", "json"))
    assert set(second) == POLICY_KEYS
    assert (second["name"], second["version"], second["text"]) == ("production", 2, LENIENT)
    assert second["project"] == platform.default_project
    listed = as_json(ghaf("gate", "policies", "list", "--output", "json"))
    assert [(p["name"], p["version"], p["latest"]) for p in listed] == [("production", 2, 2)]
    first = as_json(ghaf("gate", "policies", "show", "production:1", "--output", "json"))
    assert set(first) == POLICY_KEYS
    assert (first["version"], first["latest"], first["text"]) == (1, 2, STRICT)
    shown = ghaf("gate", "policies", "show", "production")
    assert shown.returncode == 0, shown.stderr
    assert (
        "gate policy production:2" in shown.stdout
        and "demographic_parity_difference" in shown.stdout
    )
    table = ghaf("gate", "policies", "list")
    assert "production" in table.stdout and platform.default_project in table.stdout
    # A different name stores a separate policy.
    other = ghaf("gate", "policies", "add", str(path), "--name", "fairness-only")
    assert other.returncode == 0, other.stderr
    assert [p.name for p in list_gate_policies(platform)] == ["fairness-only", "production"]


def test_bad_yaml_is_one_line_naming_the_line_and_stores_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: production\nmetrics:\n  auc: {minimum: 0.7}\n")
    run = ghaf("gate", "policies", "add", str(bad))
    assert run.returncode == 2
    assert f"{bad}:3: metrics.auc.minimum: unknown key" in run.stderr
    assert "Traceback" not in run.stderr
    assert len([line for line in run.stderr.splitlines() if line.startswith("error:")]) == 1
    bad.write_text("name: production\nmetrics: [\n")
    run = ghaf("gate", "policies", "add", str(bad))
    assert run.returncode == 2 and f"{bad}:3: not valid YAML" in run.stderr
    run = ghaf("gate", "policies", "add", str(tmp_path / "missing.yaml"))
    assert run.returncode == 2 and "cannot read gate policy" in run.stderr
    run = ghaf("gate", "policies", "add", str(bad), "--name", "bad name")
    assert run.returncode == 2  # the YAML is checked first
    assert list_gate_policies(platform) == []
    assert as_json(ghaf("gate", "policies", "list", "-o", "json")) == []
    missing = ghaf("gate", "policies", "show", "production")
    assert missing.returncode == 4 and "does not exist" in missing.stderr


def test_attach_to_a_model_and_a_project_pins_the_version(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    register_model(platform, platform.admin(), "fraud", model_dir)
    project = platform.default_project
    path = tmp_path / "policy.yaml"
    path.write_text(STRICT)
    added = ghaf("gate", "policies", "add", str(path), "--model", "fraud")
    assert added.returncode == 0, added.stderr
    assert "attached to model fraud" in added.stdout
    attached = as_json(
        ghaf("gate", "policies", "attach", "production", "--project", project, "-o", "json")
    )
    assert set(attached) == ATTACHMENT_KEYS
    assert (attached["kind"], attached["target"], attached["policy_version"]) == (
        "project",
        project,
        1,
    )
    assert attached["project"] == project
    # A new version changes no attached gate until it is attached again.
    path.write_text(LENIENT)
    added = ghaf("gate", "policies", "add", str(path))
    assert added.returncode == 0, added.stderr
    assert "model fraud still uses v1" in added.stdout
    pins = as_json(ghaf("gate", "policies", "show", "production", "-o", "json"))["attachments"]
    assert {(a["kind"], a["target"], a["policy_version"]) for a in pins} == {
        ("model", "fraud", 1),
        ("project", project, 1),
    }
    assert set(pins[0]) == ATTACHMENT_KEYS
    moved = ghaf("gate", "policies", "attach", "production", "--model", "fraud")
    assert moved.returncode == 0 and "production:2 to model fraud" in moved.stdout
    assert ghaf("gate", "policies", "attach", "production:1", "--project", project).returncode == 0
    pins = as_json(ghaf("gate", "policies", "show", "production", "-o", "json"))["attachments"]
    assert {(a["target"], a["policy_version"]) for a in pins} == {("fraud", 2), (project, 1)}
    # Wrong targets are refused, and nothing changes.
    assert ghaf("gate", "policies", "attach", "production", "--model", "nope").returncode == 4
    assert ghaf("gate", "policies", "attach", "production", "--project", "nope").returncode == 4
    assert ghaf("gate", "policies", "attach", "nope", "--model", "fraud").returncode == 4
    assert ghaf("gate", "policies", "attach", "production:9", "--model", "fraud").returncode == 4
    both = ghaf(
        "gate", "policies", "attach", "production", "--model", "fraud", "--project", project
    )
    assert both.returncode == 3 and "not both" in both.stderr
    neither = ghaf("gate", "policies", "attach", "production")
    assert neither.returncode == 3 and "--model" in neither.stderr
    assert (
        len(as_json(ghaf("gate", "policies", "show", "production", "-o", "json"))["attachments"])
        == 2
    )


def test_promotion_is_refused_by_a_failing_attached_policy(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    ref = staged(platform, model_dir)
    path = tmp_path / "policy.yaml"
    path.write_text(STRICT)
    project = platform.default_project
    assert ghaf("gate", "policies", "add", str(path), "--project", project).returncode == 0
    refused = ghaf("models", "promote", ref, "production")
    assert refused.returncode == 7, refused.stdout + refused.stderr
    message = " ".join(refused.stderr.split())
    assert "production:1" in message and "metric auc" in message
    assert "0.7" in message and "0.75" in message  # measured value and threshold
    assert "Traceback" not in refused.stderr
    assert get_model_version(platform, ref).stage == "staging"
    # The refusal rolled the verdict back with the promotion; the audit record keeps it.
    assert gate_verdicts(platform, ref) == []
    outcome, details = promote_records(platform)[-1]
    assert outcome == "denied"  # a rule refused it (a crash would read "failed")
    (gate,) = details["gates"]
    assert gate["policy"] == "production:1" and gate["passed"] is False
    assert gate["failed"] == [{"rule": "metric auc", "threshold": ">= 0.75", "measured": 0.7}]


def test_a_passing_promotion_stores_the_verdict_and_the_card_shows_it(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    ref = staged(platform, model_dir)
    path = tmp_path / "policy.yaml"
    path.write_text(LENIENT)
    assert ghaf("gate", "policies", "add", str(path), "--model", "fraud").returncode == 0
    promoted = ghaf("models", "promote", ref, "production")
    assert promoted.returncode == 0, promoted.stderr
    assert get_model_version(platform, ref).stage == "production"
    (verdict,) = as_json(ghaf("gate", "verdicts", ref, "--output", "json"))
    assert set(verdict) == {
        "policy",
        "policy_version",
        "subject",
        "passed",
        "purpose",
        "evaluated_by",
        "evaluated_at",
        "rules",
    }
    assert (verdict["policy"], verdict["policy_version"], verdict["passed"]) == (
        "production",
        1,
        True,
    )
    assert verdict["subject"] == ref and verdict["evaluated_by"] == platform.admin().name
    rules = {r["rule"]: r for r in verdict["rules"]}
    assert all(set(r) == RULE_KEYS for r in rules.values())
    assert (rules["metric auc"]["threshold"], rules["metric auc"]["measured"]) == (">= 0.6", 0.7)
    fairness = rules["fairness gender.demographic_parity_difference"]
    assert (fairness["threshold"], fairness["measured"], fairness["passed"]) == (
        "<= 0.1",
        0.05,
        True,
    )
    card = ghaf("models", "card", ref)
    assert card.returncode == 0, card.stderr
    assert "## Gate verdicts" in card.stdout
    assert "production v1" in card.stdout
    assert "| metric auc | >= 0.6 | 0.7 | pass |" in card.stdout
    assert "| fairness gender.demographic_parity_difference | <= 0.1 | 0.05 | pass |" in card.stdout
    html = tmp_path / "card.html"
    assert ghaf("models", "card", ref, "--html", str(html)).returncode == 0
    assert "<td>&gt;= 0.6</td>" in html.read_text()
    assert promote_records(platform)[-1][0] == "allowed"
    shown = ghaf("gate", "verdicts", ref)
    assert shown.returncode == 0 and "production:1 passed" in shown.stdout


def test_gate_check_takes_a_stored_policy_and_stores_nothing(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    register_model(platform, platform.admin(), "fraud", model_dir, metrics=METRICS)
    add_gate_policy(platform, platform.admin(), STRICT)
    run = ghaf("gate", "check", "fraud:1", "--policy", "production", "--output", "json")
    assert run.returncode == 7, run.stderr
    body = json.loads(run.stdout)
    assert set(body) == {"policy", "subject", "passed", "notes", "rules"}
    assert (body["policy"], body["subject"], body["passed"]) == ("production", "fraud:1", False)
    (rule,) = body["rules"]
    assert set(rule) == RULE_KEYS
    assert (rule["rule"], rule["threshold"], rule["measured"]) == ("metric auc", ">= 0.75", 0.7)
    assert "gate production failed for fraud:1" in run.stderr
    table = ghaf("gate", "check", "fraud:1", "--policy", "production")
    assert table.returncode == 7 and "FAIL metric auc" in table.stdout
    assert gate_verdicts(platform, "fraud:1") == []
    missing = ghaf("gate", "check", "fraud:1", "--policy", "nope")
    assert missing.returncode == 4 and "gate policy nope does not exist" in missing.stderr


def test_only_gate_keepers_may_add_or_attach_and_a_policy_keeps_its_project(
    platform: Platform, model_dir: Path
) -> None:
    register_model(platform, platform.admin(), "fraud", model_dir)
    author = person(platform, "dana", ["data_scientist"])
    with pytest.raises(PermissionDeniedError, match=r"gate_policy\.add"):
        add_gate_policy(platform, author, STRICT, model="fraud")
    assert list_gate_policies(platform) == []
    with platform.read_session() as session:
        denied = session.execute(
            select(AuditRecordRow.outcome).where(AuditRecordRow.action == "gate_policy.add")
        ).scalars()
        assert list(denied) == ["denied"]
    # A release manager may add and attach in their project...
    releaser = person(platform, "rel", ["release_manager"])
    stored = add_gate_policy(platform, releaser, STRICT, model="fraud")
    assert (stored.version, stored.project, stored.attachments[0].target) == (
        1,
        platform.default_project,
        "fraud",
    )
    # ...but someone whose credential counts only in another project cannot version it,
    # while a policy first added for that project's model belongs there.
    register_model(platform, platform.admin(), "scoring", model_dir, project="risk")
    outsider = person(platform, "ola", ["model_approver"], project="risk")
    with pytest.raises(PermissionDeniedError):
        add_gate_policy(platform, outsider, LENIENT, model="scoring")
    own = add_gate_policy(platform, outsider, LENIENT, name="risk-gate", model="scoring")
    assert (own.project, own.attachments[0].target) == ("risk", "scoring")
    assert [(p.name, p.latest) for p in list_gate_policies(platform)] == [
        ("production", 1),
        ("risk-gate", 1),
    ]
