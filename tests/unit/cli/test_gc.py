"""``ghaf doctor`` reports crash leftovers as a failing check; ``ghaf gc`` removes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HOLD = """
import sys, time
from pathlib import Path
from ghaf.artifacts.scratch import scratch_dir
with scratch_dir(Path(sys.argv[1]), "stage-") as d:
    (d / "upload.csv").write_text("email\\nali@example.ae\\n")
    print(d, flush=True)
    while True:
        time.sleep(0.05)
"""


def ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _killed_holder(home: Path) -> tuple[Path, int]:
    """A scratch directory whose process died by SIGKILL (no cleanup ran)."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        directory = Path(child.stdout.readline().strip())
        child.kill()
        child.wait(timeout=60)
    assert directory.is_dir()
    return directory, child.pid


def test_doctor_reports_leftovers_and_gc_removes_them(isolated_env: Path) -> None:
    home = isolated_env
    assert ghaf(home, "init").returncode == 0
    assert ghaf(home, "doctor").returncode == 0
    left, pid = _killed_holder(home)

    doctor = ghaf(home, "doctor")
    assert doctor.returncode == 9, doctor.stdout + doctor.stderr
    row = next(line for line in doctor.stdout.splitlines() if line.startswith("│ leftovers"))
    assert "FAIL" in row and "ghaf gc" in row, doctor.stdout
    assert left.name in row and f"pid {pid} gone" in row, doctor.stdout

    dry = ghaf(home, "gc", "--dry-run", "--output", "json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert [(r["path"], r["kind"], r["pid"]) for r in planned["removed"]] == [
        (str(left), "scratch", pid)
    ]
    assert left.is_dir()  # a dry run removes nothing

    done = ghaf(home, "gc")
    assert done.returncode == 0, done.stderr
    assert f"removed scratch {left}" in done.stdout
    assert not left.exists()
    assert ghaf(home, "doctor").returncode == 0
    again = json.loads(ghaf(home, "gc", "--output", "json").stdout)
    assert again == {"dry_run": False, "removed": [], "bytes": 0, "in_use": []}


def test_gc_never_touches_a_running_processs_directory(isolated_env: Path) -> None:
    home = isolated_env
    assert ghaf(home, "init").returncode == 0
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            live = Path(child.stdout.readline().strip())
            done = ghaf(home, "gc", "--output", "json")
            assert done.returncode == 0, done.stderr
            report = json.loads(done.stdout)
            assert report["removed"] == []
            assert report["in_use"][0]["path"] == str(live)
            assert report["in_use"][0]["pid"] == child.pid
            assert (live / "upload.csv").exists()
            assert ghaf(home, "doctor").returncode == 0  # in use is not a leftover
        finally:
            child.kill()
