"""``ghaf pipelines run|list|show|logs`` as a user types them, and Ctrl-C on a running pipeline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from ghaf.pipelines import get_run, list_runs
from ghaf.pipelines.tables import PipelineRunRow
from ghaf.platform import Platform


def ghaf(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_run_list_show_logs(platform: Platform) -> None:
    run = ghaf("pipelines", "run", "ghaf.pipelines.examples:numbers", "--param", "rows=50")
    assert run.returncode == 0, run.stderr
    assert "write_report" in run.stdout and "succeeded" in run.stdout
    runs = list_runs(platform)
    assert len(runs) == 1 and runs[0].params == {"rows": 50}
    run_id = runs[0].id[:12]
    listing = ghaf("pipelines", "list")
    assert run_id in listing.stdout
    show = ghaf("pipelines", "show", run_id)
    assert "column_stats" in show.stdout and "succeeded" in show.stdout
    logs = ghaf("pipelines", "logs", run_id, "--step", "make_table")
    assert logs.returncode == 0 and "attempt 1" in logs.stdout


def test_bad_input_gives_clear_errors_and_stores_nothing(platform: Platform) -> None:
    cases = [
        (("pipelines", "run", "nomodule"), 3, "is not MODULE:ATTRIBUTE"),
        (("pipelines", "run", "ghaf.nope:x"), 4, "cannot be imported"),
        (("pipelines", "run", "ghaf.pipelines.examples:numbers", "-p", "bogus=1"), 3, "bogus"),
        (("pipelines", "run", "ghaf.pipelines.examples:make_table"), 3, "not a Pipeline"),
        (("pipelines", "show", "ffffffff"), 4, "does not exist"),
    ]
    for args, code, words in cases:
        result = ghaf(*args)
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr
    with platform.read_session() as session:
        assert session.execute(select(func.count()).select_from(PipelineRunRow)).scalar_one() == 0


def test_ctrl_c_marks_the_run_cancelled_and_stores_no_partial_output(
    platform: Platform, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    blobs_before = {p for p in (platform.settings.home / "artifacts").rglob("*") if p.is_file()}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ghaf",
            "pipelines",
            "run",
            "ghaf.pipelines.examples:sleepy",
            "-p",
            f"marker_dir={marker}",
            "-p",
            "seconds=60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not (marker / "pid-1").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (marker / "pid-1").exists(), process.communicate(timeout=5)
    worker = int((marker / "pid-1").read_text())
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "cancelled" in out
    run = get_run(platform, list_runs(platform)[0].id)
    assert run.status == "cancelled" and run.error == "interrupted (SIGINT)"
    slow = run.step("slow")
    assert slow.status == "cancelled" and slow.output_digest is None
    try:
        os.kill(worker, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "the step's worker process survived the cancellation"
    blobs_after = {p for p in (platform.settings.home / "artifacts").rglob("*") if p.is_file()}
    new = blobs_after - blobs_before
    # Whatever is new is a recorded output or log of a finished step: nothing half-written.
    recorded = {d for s in run.steps for d in (s.output_digest, s.log_digest) if d}
    assert all(any(d in str(p) for d in recorded) for p in new), sorted(map(str, new))
