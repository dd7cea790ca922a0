"""The release path as a user (and an attacker) types it: the issue's five commands replayed.

On a fresh home with default settings: the author cannot approve, no setting or variable
makes the process somebody else, an unapproved version cannot take a protected alias,
and break-glass needs a reason and a second authenticated person; each refusal is in
the audit trail.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ghaf.platform import Platform
from ghaf.registry import get_model_version, register_model
from ghaf.testing.people import mint

OWNER = pwd.getpwuid(os.geteuid()).pw_name
REASON = "INC-42: champion returns NaN since 09:10; restoring fraud:2 while we investigate"


def ghaf(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        timeout=180,
    )


def audit(*args: str) -> list[dict[str, object]]:
    out = ghaf("audit", "show", "--output", "json", *args)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(3).normal(size=(40, 3))
    path = tmp_path / "model.skops"
    sio.dump(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), path)
    return path


@pytest.mark.slow
def test_the_five_commands_replayed(platform: Platform, model_file: Path, tmp_path: Path) -> None:
    assert ghaf("models", "register", "fraud", str(model_file)).returncode == 0
    refused = ghaf("models", "approve", "fraud:1")
    assert refused.returncode == 7
    assert f"{OWNER} is the author of fraud:1 and cannot approve it" in refused.stderr
    # Every impersonation the settings and the environment offer: refused and audited.
    (platform.settings.home / "ghaf.toml").write_text('[security]\nadmin_user = "alice"\n')
    via_toml = ghaf("models", "approve", "fraud:1")
    (platform.settings.home / "ghaf.toml").unlink()
    attempts = [
        via_toml,
        ghaf("models", "approve", "fraud:1", env={"GHAF_SECURITY__ADMIN_USER": "alice"}),
        ghaf("models", "approve", "fraud:1", env={"GHAF_LOCAL_PRINCIPALS": '["alice"]'}),
    ]
    for attempt in attempts:
        assert attempt.returncode == 6, attempt.stderr
        assert "identity cannot be set" in attempt.stderr and "was refused" in attempt.stderr
    # $USER and $LOGNAME are not identity: the kernel's account is, so it stays the author.
    as_user = ghaf("models", "approve", "fraud:1", env={"USER": "alice", "LOGNAME": "alice"})
    assert as_user.returncode == 7 and f"{OWNER} is the author" in as_user.stderr
    bogus = ghaf("--token", "ghaf_0123456789abcdef_" + "A" * 43, "models", "approve", "fraud:1")
    assert bogus.returncode == 6 and "not valid" in bogus.stderr
    assert get_model_version(platform, "fraud:1").approvals == ()
    denied = audit("--outcome", "denied")
    asserted = [r for r in denied if r["action"] == "identity.assert"]
    assert len(asserted) == 3 and {r["actor"] for r in asserted} == {OWNER}
    assert "alice" in str(asserted[1]["details"])
    approvals = [r for r in denied if r["action"] == "model.approve"]
    assert len(approvals) == 2 and all(r["actor"] == OWNER for r in approvals)
    assert any(r["action"] == "auth.authenticate" for r in denied)

    assert ghaf("models", "register", "fraud", str(model_file)).returncode == 0
    moved = ghaf("models", "alias", "fraud", "champion", "2")
    assert moved.returncode == 7
    assert "fraud:2 may not hold the protected alias 'champion'" in moved.stderr
    assert "approved (0 of 1 approvals" in moved.stderr
    assert get_model_version(platform, "fraud:2").aliases == ()
    assert audit("--outcome", "denied")[-1]["action"] == "model.alias"


@pytest.mark.slow
def test_break_glass_needs_a_reason_and_a_second_person(
    platform: Platform, model_file: Path
) -> None:
    # The owner's fraud:1, registered as `ghaf models register` does (that command is the
    # test above's; a process of its own here would only load the model's libraries again).
    register_model(platform, platform.admin(), "fraud", model_file)
    rita = ("--token", mint(platform, "rita", ["release_manager"]))
    ben = ("--token", mint(platform, "ben", ["model_approver"]))
    request = ("models", "break-glass", "request", "fraud:1", "--alias", "champion")
    no_reason = ghaf(*rita, *request)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    short = ghaf(*rita, *request, "--reason", "urgent")
    assert short.returncode == 3 and "at least 20 characters" in short.stderr
    made = ghaf(*rita, *request, "--reason", REASON)
    assert made.returncode == 0, made.stderr
    request_id = made.stdout.split("break-glass request ")[1].split(":")[0]
    alone = ghaf(*rita, "models", "break-glass", "confirm", request_id)
    assert alone.returncode == 7 and "rita is the requester" in alone.stderr
    # The owner minted rita's token: on one laptop that is evidence, not a second person.
    owner = ghaf("models", "break-glass", "confirm", request_id)
    assert owner.returncode == 7 and "rita acted with a credential" in owner.stderr
    assert get_model_version(platform, "fraud:1").aliases == ()
    done = ghaf(*ben, "models", "break-glass", "confirm", request_id)
    assert done.returncode == 0, done.stderr
    version = get_model_version(platform, "fraud@champion")
    assert version.version == 1 and version.approvals == ()
    assert "Break-glass fraud:1@champion" in version.card and REASON in version.card
    records = audit("--break-glass")
    assert [(r["action"], r["actor"], r["outcome"]) for r in records] == [
        ("model.break_glass_request", "rita", "failed"),  # the reason was too short
        ("model.break_glass_request", "rita", "allowed"),
        ("model.break_glass", "rita", "denied"),
        ("model.break_glass", OWNER, "denied"),
        ("model.break_glass", "ben", "allowed"),
    ]
    details = records[-1]["details"]
    assert isinstance(details, dict)
    assert details["reason"] == REASON and details["requested_by"] == "rita"
    listed = json.loads(ghaf("models", "break-glass", "list", "--output", "json").stdout)
    assert listed["requests"][0]["status"] == "done"
    assert listed["requests"][0]["confirmed_by"] == "ben"


@pytest.mark.slow
def test_release_policy_is_data_shown_set_and_audited(platform: Platform, tmp_path: Path) -> None:
    shown = ghaf("policy", "release", "show")
    assert shown.returncode == 0 and "protected_aliases: [champion, production]" in shown.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nprotected_stages: [heaven]\n")
    refused = ghaf("policy", "release", "set", str(bad))
    assert refused.returncode != 0 and "protected_stages" in refused.stderr
    assert json.loads(ghaf("policy", "release", "show", "--output", "json").stdout)["version"] == 0
    good = tmp_path / "good.yaml"
    good.write_text("version: 1\nprotected_aliases: [champion, prod-eu]\n")
    assert ghaf("policy", "release", "set", str(good)).returncode == 0
    body = json.loads(ghaf("policy", "release", "show", "--output", "json").stdout)
    assert body["version"] == 1 and body["policy"]["protected_aliases"] == ["champion", "prod-eu"]
    assert body["created_by"] == OWNER
    viewer = ("--token", mint(platform, "vic", ["viewer"]))
    assert ghaf(*viewer, "policy", "release", "set", str(good)).returncode == 6
    changes = audit("--resource", "release_policy:default")
    assert [(r["outcome"], r["actor"]) for r in changes] == [
        ("allowed", OWNER),
        ("denied", "vic"),
    ]
