"""``--output json`` on the set-up commands: one JSON document a script can read."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path


def _ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_version_and_doctor_print_one_json_document(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _ghaf(home, "init").returncode == 0
    assert json.loads(_ghaf(home, "version", "-o", "json").stdout) == {"version": version("ghaf")}
    doctor = _ghaf(home, "doctor", "--output", "json")
    report = json.loads(doctor.stdout)
    assert doctor.returncode == (0 if report["ok"] else 9)
    names = [check["name"] for check in report["checks"]]
    assert {"metadata", "artifacts"} <= set(names)
    assert all(set(check) == {"name", "ok", "detail", "fix"} for check in report["checks"])
