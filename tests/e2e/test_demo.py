"""``ghaf demo`` runs the whole loop on the embedded defaults and prints its summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
