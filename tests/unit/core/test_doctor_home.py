"""``ghaf doctor`` never creates the home: only ``ghaf init`` does, and privately (0700)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path


def ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_doctor_on_a_missing_home_says_run_init_and_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "nested" / "home"
    doctor = ghaf(home, "doctor")
    assert doctor.returncode == 9, doctor.stdout + doctor.stderr
    assert "no home at" in doctor.stdout and "ghaf init" in doctor.stdout
    assert "Traceback" not in doctor.stdout + doctor.stderr
    assert not home.exists() and not home.parent.exists()

    assert ghaf(home, "init").returncode == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    again = ghaf(home, "doctor")
    assert again.returncode == 0, again.stdout + again.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
