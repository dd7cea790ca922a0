"""``ghaf demo`` runs the whole loop on the embedded defaults and prints its summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ghaf.lineage import upstream
from ghaf.pipelines import get_run, list_runs, output_of
from ghaf.platform import Platform
from ghaf.registry import get_model_version
from ghaf.settings import load_settings


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    result = subprocess.run(
        [sys.executable, "-m", "ghaf", "demo", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Ghaf demo" in result.stdout
    assert "chain valid" in result.stdout
    assert (home / "ghaf.db").exists()
    _check_training_pipeline(home)


def _check_training_pipeline(home: Path) -> None:
    """The training stage left a succeeded pipeline run whose steps made the new version."""
    with Platform(load_settings(home=home, artifact_region="ae-auh-1")) as platform:
        [listed] = list_runs(platform, "fraud-retrain")
        run = get_run(platform, listed.id)
        assert run.status == "succeeded", run.error
        assert [s.step for s in run.steps] == ["join", "train", "evaluate", "gate", "register"]
        assert {s.status for s in run.steps} == {"succeeded"}
        version = get_model_version(platform, output_of(platform, run, "register")["ref"])
        assert version.run_id == output_of(platform, run, "train")["run_id"]
        assert version.approvals and version.created_by not in version.approvals
        nodes = set(upstream(platform, version.node))
        assert {f"run:{run.id}", f"run:{run.step('train').id}"} <= nodes
        assert any(node.startswith("dataset:fraud_training:") for node in nodes)
