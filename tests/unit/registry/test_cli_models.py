"""``ghaf models``: the commands as a user types them, including bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ghaf.platform import Platform
from ghaf.registry import get_model_version, list_models
from ghaf.testing.people import mint


def ghaf(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        timeout=120,
    )


def test_models_commands_end_to_end(platform: Platform, model_dir: Path, tmp_path: Path) -> None:
    # the author, who may also approve (but never her own versions)
    ana = {"GHAF_TOKEN": mint(platform, "ana", ["data_scientist", "model_approver"])}
    ben = ("--token", mint(platform, "ben", ["model_approver"]))  # a second person
    out = ghaf(
        "models", "register", "fraud", str(model_dir), "--description", "fraud scores", env=ana
    )
    assert out.returncode == 0, out.stderr
    assert "registered fraud:1" in out.stdout
    assert "fraud" in ghaf("models", "list").stdout
    # champion is protected: an unapproved version may not hold it; another alias is free.
    refused = ghaf("models", "alias", "fraud", "champion", "1")
    assert refused.returncode == 7 and "approved (0 of 1 approvals" in refused.stderr
    assert ghaf("models", "alias", "fraud", "challenger", "1").returncode == 0
    shown = ghaf("models", "show", "fraud@challenger")
    assert shown.returncode == 0 and "challenger" in shown.stdout
    assert ghaf("models", "promote", "fraud:1", "staging").returncode == 0
    # Four eyes: the author may not approve, and production needs an approval.
    refused = ghaf("models", "approve", "fraud:1", env=ana)
    assert refused.returncode == 7 and "ana is the author of fraud:1" in refused.stderr
    refused = ghaf("models", "promote", "fraud:1", "production")
    assert refused.returncode == 7 and "approved (0 of 1" in refused.stderr
    approved = ghaf(*ben, "models", "approve", "fraud:1", "--comment", "ok")
    assert approved.returncode == 0, approved.stderr
    assert "approved fraud:1 by ben" in approved.stdout
    assert ghaf("models", "promote", "fraud:1", "production").returncode == 0
    assert ghaf("models", "alias", "fraud", "champion", "1").returncode == 0
    version = get_model_version(platform, "fraud:1")
    assert version.stage == "production" and version.aliases == ("challenger", "champion")
    card = ghaf("models", "card", "fraud:1")
    assert "## Intended use" in card.stdout and "fraud scores" in card.stdout
    (tmp_path / "card.md").write_text("# Edited\n\n- reviewed")
    assert ghaf("models", "card", "fraud:1", "--edit", str(tmp_path / "card.md")).returncode == 0
    assert ghaf("models", "card", "fraud:1", "--html", str(tmp_path / "c.html")).returncode == 0
    assert "<h1>Edited</h1>" in (tmp_path / "c.html").read_text()


def test_models_bad_input_changes_nothing(platform: Platform, tmp_path: Path) -> None:
    out = ghaf("models", "register", "fraud", str(tmp_path / "missing"))
    assert out.returncode == 4 and "does not exist" in out.stderr
    out = ghaf("models", "register", "bad name!", str(tmp_path))
    assert out.returncode == 3 and "model name" in out.stderr
    out = ghaf("models", "show", "fraud:x")
    assert out.returncode == 3
    out = ghaf("models", "import-mlflow", str(tmp_path), "--name", "m")
    assert out.returncode == 4 and "MLmodel" in out.stderr
    assert list_models(platform) == []
