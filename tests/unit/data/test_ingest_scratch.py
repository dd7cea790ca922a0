"""An ingest stages its rows in the home's scratch space, marked with its process: a
killed ingest's plaintext staging is reported by ``ghaf doctor`` and removed by ``ghaf gc``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ghaf.artifacts.scratch import MARKER
from ghaf.platform import Platform

STALLED_INGEST = """
import sys, time
from pathlib import Path
import pyarrow as pa
from ghaf.data import ingest
from ghaf.platform import Platform
from ghaf.settings import load_settings

class Stalls:
    def describe(self):
        return "a source that stalls after its first batch"
    def batches(self):
        yield pa.record_batch({"email": ["ali@example.ae"]})
        print("staged", flush=True)
        while True:
            time.sleep(0.05)

platform = Platform(load_settings(home=Path(sys.argv[1])))
ingest(platform, platform.admin(), Stalls(), "customers")
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


def test_a_killed_ingest_leaves_marked_staging_that_gc_removes(platform: Platform) -> None:
    home = platform.settings.home
    with subprocess.Popen(
        [sys.executable, "-c", STALLED_INGEST, str(home)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "staged"
            (staging,) = (home / "tmp").glob("stage-*")
            assert json.loads((staging / MARKER).read_text())["pid"] == child.pid
        finally:
            child.kill()
            child.wait(timeout=60)

    doctor = ghaf(home, "doctor")
    assert doctor.returncode == 9, doctor.stdout + doctor.stderr
    row = next(line for line in doctor.stdout.splitlines() if line.startswith("│ leftovers"))
    assert staging.name in row and f"pid {child.pid} gone" in row
    assert ghaf(home, "gc").returncode == 0
    assert not staging.exists()
    assert ghaf(home, "doctor").returncode == 0
