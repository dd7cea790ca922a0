"""The local executor: order, parallelism, retries, timeouts, kill -9, caching, lineage."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ghaf.errors import InvalidInputError
from ghaf.lineage import upstream
from ghaf.pipelines import Pipeline, output_of, run_pipeline, step
from ghaf.pipelines.examples import flaky, make_table, numbers, slow, too_slow
from ghaf.pipelines.local import LocalExecutor
from ghaf.platform import Platform


def test_runs_in_order_and_caches(platform: Platform) -> None:
    first = run_pipeline(platform, platform.admin(), numbers(rows=500))
    assert first.status == "succeeded", first.error
    assert sorted(first.executed) == ["column_stats", "column_sum", "make_table", "write_report"]
    by_name = {s.step: s for s in first.steps}
    assert by_name["make_table"].finished_at <= by_name["column_sum"].started_at
    assert by_name["column_stats"].finished_at <= by_name["write_report"].started_at
    report = output_of(platform, first, "write_report")
    table = output_of(platform, first, "make_table")
    assert (report / "report.txt").read_text() == f"sum={np.sum(table['x'].to_numpy()):.6f}\n"
    assert all(s.cpu_s is not None and s.log_digest for s in first.steps)

    again = run_pipeline(platform, platform.admin(), numbers(rows=500))
    assert again.status == "succeeded"
    assert again.executed == []
    assert {s.status for s in again.steps} == {"cached"}
    assert again.step("write_report").output_digest == by_name["write_report"].output_digest

    changed = run_pipeline(platform, platform.admin(), numbers(), params={"rows": 501})
    assert sorted(changed.executed) == sorted(first.executed)

    nodes = upstream(platform, f"run:{by_name['write_report'].id}")
    assert f"run:{by_name['make_table'].id}" in nodes


def test_independent_steps_run_in_parallel(platform: Platform, tmp_path: Path) -> None:
    pipeline = Pipeline("parallel")
    pipeline.add(slow, name="a", marker_dir=str(tmp_path / "a"), seconds=1.5)
    pipeline.add(slow, name="b", marker_dir=str(tmp_path / "b"), seconds=1.5)
    run = run_pipeline(platform, platform.admin(), pipeline, executor=LocalExecutor(2))
    a, b = run.step("a"), run.step("b")
    assert run.status == "succeeded"
    assert a.started_at < b.finished_at and b.started_at < a.finished_at


def test_a_step_failing_twice_then_succeeding_is_retried(
    platform: Platform, tmp_path: Path
) -> None:
    pipeline = Pipeline("flaky")
    pipeline.add(flaky, marker_dir=str(tmp_path / "m"), failures=2)
    run = run_pipeline(platform, platform.admin(), pipeline)
    assert run.status == "succeeded", run.error
    assert run.step("flaky").attempts == 3
    assert output_of(platform, run, "flaky") == "ok after 3 attempts"
    log = platform.artifacts.read_bytes(run.step("flaky").log_digest or "").decode()
    assert "flaky failure 1" in log and "flaky failure 2" in log


def test_a_step_failing_past_its_retries_fails_the_run(platform: Platform, tmp_path: Path) -> None:
    pipeline = Pipeline("broken")
    bad = pipeline.add(flaky, marker_dir=str(tmp_path / "m"), failures=5)
    from ghaf.pipelines.examples import column_sum

    pipeline.add(column_sum, table=bad)
    run = run_pipeline(platform, platform.admin(), pipeline)
    assert run.status == "failed"
    assert run.error == "step flaky failed after 3 attempt(s): RuntimeError: flaky failure 3"
    assert run.step("column_sum").status == "skipped"


def test_a_step_over_its_timeout_is_killed(platform: Platform) -> None:
    pipeline = Pipeline("timeout")
    pipeline.add(too_slow, seconds=600)  # far past its 0.5 s timeout and any machine's lag
    started = time.monotonic()
    run = run_pipeline(platform, platform.admin(), pipeline)
    assert time.monotonic() - started < 300  # killed: it did not sleep its 600 s
    assert run.status == "failed"
    assert "timed out after 0.5s" in (run.error or "")


@step(retries=1, backoff_s=0.05, cache=False)
def held_once(marker_dir: str) -> str:
    """The first attempt writes its pid and waits to be killed (300 s at most); the next returns."""
    directory = Path(marker_dir)
    directory.mkdir(parents=True, exist_ok=True)
    attempt = len(list(directory.glob("pid-*"))) + 1
    (directory / f"pid-{attempt}.tmp").write_text(str(os.getpid()))
    (directory / f"pid-{attempt}.tmp").rename(directory / f"pid-{attempt}")
    if attempt == 1:
        time.sleep(300)
    return f"attempt {attempt}"


def test_a_step_killed_with_sigkill_is_retried(platform: Platform, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    pipeline = Pipeline("killed")
    pipeline.add(held_once, marker_dir=str(marker))
    killed: list[int] = []

    def killer() -> None:  # the first attempt waits for this, however late it comes
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pid_file = marker / "pid-1"
            if pid_file.exists():
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    run = run_pipeline(platform, platform.admin(), pipeline)
    thread.join()
    assert killed
    assert run.status == "succeeded", run.error
    assert run.step("held_once").attempts == 2
    assert output_of(platform, run, "held_once") == "attempt 2"
    assert int((marker / "pid-2").read_text()) != killed[0]


def test_bad_pipeline_definitions_are_refused() -> None:
    pipeline = Pipeline("p")
    with pytest.raises(InvalidInputError, match="no parameter 'nope'"):
        pipeline.add(make_table, nope=1)
    with pytest.raises(InvalidInputError, match="not JSON-able"):
        pipeline.add(make_table, rows=object(), seed=1)
    with pytest.raises(InvalidInputError, match="not a step"):
        pipeline.add(print)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="is invalid"):
        Pipeline("bad name!")
    with pytest.raises(InvalidInputError, match="no parameter 'x'"):
        numbers().resolve_params({"x": 1})

    @step
    def local_step() -> int:
        return 1

    with pytest.raises(InvalidInputError, match="retries"):
        step(retries=-1)
    assert local_step() == 1
