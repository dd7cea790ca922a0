"""Runs: logging, nesting, params, artifacts, env; nothing lost on exit, exception or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.platform import Platform
from ghaf.tracking import download_artifacts, get_metric_history, get_run, start_run


def test_a_run_records_everything(platform: Platform, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with start_run(
        "train", platform=platform, experiment="fraud", params={"lr": 0.1}, tags={"team": "risk"}
    ) as run:
        for i in range(100):
            run.log_metric("loss", 1.0 / (i + 1))
        run.log_metrics({"auc": 0.9, "f1": 0.7}, step=3)
        run.log_artifact(tmp_path / "notes.txt", "docs")
        run.log_input("dataset:transactions:1")
        with start_run("fold-1", platform=platform, experiment="fraud", nested=True) as child:
            child.log_metric("auc", 0.8)
    stored = get_run(platform, run.run_id)
    assert stored.status == "finished" and stored.end_time is not None
    assert stored.params == {"lr": "0.1"}
    assert stored.tags == {"team": "risk"}
    assert stored.metrics == {"loss": 0.01, "auc": 0.9, "f1": 0.7}
    assert stored.metric_min["loss"] == 0.01 and stored.metric_max["loss"] == 1.0
    assert stored.inputs == ("dataset:transactions:1",)
    assert set(stored.env) >= {"python", "packages", "hardware", "git"}
    assert "numpy" in stored.env["packages"]
    history = get_metric_history(platform, run.run_id, "loss")
    assert [p.step for p in history] == list(range(100))
    assert get_run(platform, child.run_id).parent_run_id == run.run_id
    out = download_artifacts(platform, run.run_id, "docs/notes.txt", tmp_path / "dl")
    assert out.read_text() == "hello"


def test_params_are_write_once(platform: Platform) -> None:
    with start_run(platform=platform) as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)
        with pytest.raises(InvalidInputError, match="already"):
            run.log_param("lr", 0.2)


def test_bad_keys_and_nan_are_refused(platform: Platform) -> None:
    with start_run(platform=platform) as run:
        with pytest.raises(InvalidInputError, match="metric key"):
            run.log_metric("bad;key", 1.0)
        with pytest.raises(InvalidInputError, match="NaN"):
            run.log_metric("ok", float("nan"))
    with pytest.raises(NotFoundError):
        get_run(platform, "0" * 32)
    with pytest.raises(InvalidInputError):
        get_run(platform, "not-an-id")


def test_an_exception_in_the_block_flushes_and_marks_failed(platform: Platform) -> None:
    with pytest.raises(RuntimeError), start_run(platform=platform, flush_interval=60) as run:
        for i in range(500):
            run.log_metric("loss", float(i))
        raise RuntimeError("boom")
    stored = get_run(platform, run.run_id)
    assert stored.status == "failed"
    assert len(get_metric_history(platform, run.run_id, "loss")) == 500


def test_log_batch_writes_synchronously(platform: Platform) -> None:
    with start_run(platform=platform) as run:
        count = run.log_batch([("m", float(i), i) for i in range(1000)], params={"p": 1})
        assert count == 1000
        assert len(get_metric_history(platform, run.run_id, "m")) == 1000
        assert get_run(platform, run.run_id).params == {"p": "1"}


def test_the_background_writer_flushes_while_running(platform: Platform) -> None:
    with start_run(platform=platform, flush_interval=0.05) as run:
        run.log_metric("m", 1.0)
        deadline = time.monotonic() + 60  # generous: it returns at the first flush
        while not get_metric_history(platform, run.run_id, "m"):
            assert time.monotonic() < deadline, "the writer did not flush"
            time.sleep(0.02)


_CHILD = """
import sys, time
from ghaf.home import init_home
from ghaf.settings import load_settings
from ghaf.tracking import start_run
platform = init_home(load_settings())
mode = sys.argv[1]
run = start_run(platform=platform, flush_interval=float(sys.argv[2]))
print(run.run_id, flush=True)
if mode == "exit":
    for i in range(2000):
        run.log_metric("m", time.time(), step=i)
    sys.exit(0)  # no end(): atexit must flush
i = 0
while True:
    run.log_metric("m", time.time(), step=i)
    i += 1
    if i % 100 == 0:
        print("tick", i, flush=True)
    time.sleep(0.0005)
"""


def _spawn(home: Path, mode: str, interval: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode, str(interval)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GHAF_HOME": str(home)},
    )


def _wait_ticks(proc: subprocess.Popen[str], ticks: int) -> str:
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    for _ in range(ticks):
        proc.stdout.readline()
    return run_id


def test_normal_exit_without_end_loses_nothing(platform: Platform) -> None:
    proc = _spawn(platform.settings.home, "exit", 60)
    run_id = _wait_ticks(proc, 0)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert len(get_metric_history(platform, run_id, "m")) == 2000
    assert get_run(platform, run_id).status == "finished"


@pytest.mark.slow
def test_sigterm_loses_nothing(platform: Platform) -> None:
    proc = _spawn(platform.settings.home, "loop", 60)
    run_id = _wait_ticks(proc, 5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    logged = max(
        [500, *(int(line.split()[1]) for line in out.splitlines() if line.startswith("tick"))]
    )
    stored = get_metric_history(platform, run_id, "m")
    assert len(stored) >= logged  # everything up to the last tick printed, and any after it
    assert get_run(platform, run_id).status == "killed"


@pytest.mark.slow
def test_kill_9_loses_at_most_the_flush_interval(platform: Platform) -> None:
    # The writer flushes every interval while the run goes on, so a kill -9 loses only
    # the points logged since the last flush. Shown by flushes, not by a wall clock: the
    # stored history grows again and again before the kill, and after it every flushed
    # point is there, in order, with no torn chunk.
    proc = _spawn(platform.settings.home, "loop", 0.2)
    try:
        run_id = _wait_ticks(proc, 10)
        sizes = [0]
        deadline = time.monotonic() + 120
        while len(sizes) < 4:
            assert time.monotonic() < deadline, f"the writer stopped flushing: {sizes}"
            size = len(get_metric_history(platform, run_id, "m"))
            if size > sizes[-1]:
                sizes.append(size)
            time.sleep(0.05)
        proc.kill()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)
    stored = get_metric_history(platform, run_id, "m")
    assert len(stored) >= sizes[-1]
    assert [p.step for p in stored] == list(range(len(stored)))
    assert get_run(platform, run_id).status == "running"


def test_ghaf_start_run_uses_the_default_platform(platform: Platform) -> None:
    import ghaf
    from ghaf.tracking.default import default_platform, set_default_platform

    set_default_platform(None)
    try:
        with ghaf.start_run("default", experiment="sdk") as run:
            run.log_metric("m", 2.0)
        assert get_run(default_platform(), run.run_id).metrics == {"m": 2.0}
        assert get_run(platform, run.run_id).experiment == "sdk"  # same home
    finally:
        default_platform().close()
        set_default_platform(None)
