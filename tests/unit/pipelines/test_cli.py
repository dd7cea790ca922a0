"""``ghaf pipelines run|list|show|logs`` as a user types them, and Ctrl-C on a running pipeline."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
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
    copies = platform.settings.home / "artifacts" / "audit"  # signed audit checkpoints
    new = {p for p in blobs_after - blobs_before if not p.is_relative_to(copies)}
    # Whatever is new is a recorded output or log of a finished step: nothing half-written.
    recorded = {d for s in run.steps for d in (s.output_digest, s.log_digest) if d}
    assert all(any(d in str(p) for d in recorded) for p in new), sorted(map(str, new))


class Watch:
    """``ghaf pipelines triggers run`` in the background, its output read as it comes."""

    def __init__(self, *args: str, stderr: Path) -> None:
        self._stderr = stderr.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ghaf", "pipelines", "triggers", "run", *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self.output = ""

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, words: str, timeout: float = 180) -> None:
        """Read output until ``words`` appear; a run under load may take a while."""
        deadline = time.monotonic() + timeout
        while words not in self.output:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise AssertionError(f"no {words!r} after {timeout}s:\n{self.output}") from None
            assert line is not None, f"exited before {words!r}:\n{self.output}"
            self.output += line

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; the rest of the output is read."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=120)
        self._reader.join(timeout=60)
        while not self._lines.empty():
            self.output += self._lines.get_nowait() or ""
        return code

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process.poll() is None:  # a failed wait: do not leave it running
            self.process.kill()
            self.process.wait(timeout=60)
        self._reader.join(timeout=60)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.close()


def test_triggers_run_fires_within_the_cooldown_and_lists_what_fired(
    platform: Platform, tmp_path: Path
) -> None:
    # A six-field cron fires every second; a cooldown longer than the test lets exactly
    # one run through, and the next due second is skipped. The watch is stopped (Ctrl-C)
    # once the skip is printed, however long the run took on a busy machine.
    numbers = "ghaf.pipelines.examples:numbers"
    with Watch(
        numbers, "--cron", "* * * * * *", "--param", "rows=20", "--cooldown", "3600",
        "--interval", "0.2", stderr=tmp_path / "watch.err",
    ) as watch:  # fmt: skip
        watch.wait_for("skipped: cooldown")
        assert watch.stop() == 0, (tmp_path / "watch.err").read_text()
    assert "watching cron:numbers" in watch.output
    assert watch.output.count("cron:numbers fired: run") == 1, watch.output
    assert "stopped" in watch.output
    fired = [r for r in list_runs(platform) if r.trigger == "cron:numbers"]
    assert len(fired) == 1 and fired[0].status == "succeeded" and fired[0].params == {"rows": 20}

    with Watch(
        numbers, "--name", "capped", "--cron", "* * * * * *", "--max-runs", "2",
        "--window", "3600", "--interval", "0.2", stderr=tmp_path / "capped.err",
    ) as capped:  # fmt: skip
        capped.wait_for("skipped: max frequency: 2 runs in 3600s")
        assert capped.stop() == 0, (tmp_path / "capped.err").read_text()
    assert capped.output.count("cron:capped fired: run") == 2, capped.output

    listing = ghaf("pipelines", "triggers", "fired")
    assert listing.returncode == 0 and fired[0].id[:12] in listing.stdout
    assert listing.stdout.count("cron:capped") == 2
    only = ghaf("pipelines", "triggers", "fired", "--trigger", "cron:numbers")
    assert "cron:numbers" in only.stdout and "cron:capped" not in only.stdout

    # An event trigger waits on the bus and stops at the end of --duration.
    events = ghaf(
        "pipelines", "triggers", "run", "ghaf.pipelines.examples:numbers",
        "--on", "drift.detected", "--match", 'model="fraud"', "--duration", "0.5",
    )  # fmt: skip
    assert events.returncode == 0, events.stderr
    assert "watching event:drift.detected:numbers" in events.stdout


def test_triggers_bad_input_gives_clear_errors(platform: Platform) -> None:
    numbers = "ghaf.pipelines.examples:numbers"
    cases = [
        (("run", numbers, "--cron", "61 * * * *"), 3, "cron schedule '61 * * * *'"),
        (("run", numbers), 3, "no trigger given"),
        (("run", "ghaf.nope:x", "--cron", "* * * * *"), 4, "cannot be imported"),
        (("run", "ghaf.pipelines.examples:nothing", "--on", "x"), 4, "has no attribute"),
        (("run", numbers, "--cron", "* * * * *", "--cooldown", "-1"), 3, "--cooldown is -1"),
        (("run", numbers, "--on", "x", "--max-runs", "0"), 3, "--max-runs is 0"),
        (("run", numbers, "--on", "x", "--interval", "0"), 3, "--interval is 0"),
        (("run", numbers, "--on", "x", "--match", "nokey"), 3, "is not KEY=VALUE"),
    ]
    for args, code, words in cases:
        result = ghaf("pipelines", "triggers", *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert list_runs(platform) == []
