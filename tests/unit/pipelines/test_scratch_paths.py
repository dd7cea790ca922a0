"""Pipeline steps decrypt their inputs into the home's scratch space, never the system's
temporary directory, and nothing stays there: not after a step, not after a killed one."""

from __future__ import annotations

from pathlib import Path

from ghaf.artifacts.leftovers import find_leftovers
from ghaf.pipelines import Pipeline, output_of, run_pipeline, step
from ghaf.pipelines.examples import too_slow
from ghaf.platform import Platform


@step(cache=False)
def report(workdir: Path) -> Path:
    """A directory output, written in the step's scratch directory."""
    (workdir / "where.txt").write_text(str(workdir))
    return workdir


@step(cache=False)
def read_back(folder: Path) -> str:
    """Receives the upstream directory, decrypted for it; says where it was put."""
    return f"{folder}|{(folder / 'where.txt').read_text()}"


def test_steps_work_in_the_homes_scratch_space_and_leave_nothing(platform: Platform) -> None:
    home = platform.settings.home
    pipeline = Pipeline("scratch")
    folder = pipeline.add(report)
    pipeline.add(read_back, folder=folder)
    run = run_pipeline(platform, platform.admin(), pipeline)
    assert run.status == "succeeded", run.error

    received, written = output_of(platform, run, "read_back").split("|")
    for path in (Path(received), Path(written)):  # <home>/tmp/step-<node>-*/{in,work}
        assert path.relative_to(home / "tmp").parts[0].startswith("step-"), path
    assert list((home / "tmp").glob("step-*")) == []
    assert list((home / "tmp").glob("pipeline-logs-*")) == []  # the run's executor closed

    loaded = output_of(platform, run, "report")  # a directory: kept for this process
    assert loaded.is_relative_to(home / "tmp") and (loaded / "where.txt").exists()
    assert find_leftovers(platform.settings)[0] == []


def test_a_step_killed_at_its_timeout_leaves_no_scratch(platform: Platform) -> None:
    pipeline = Pipeline("timeout")
    pipeline.add(too_slow, seconds=600)
    run = run_pipeline(platform, platform.admin(), pipeline)
    assert run.status == "failed" and "timed out" in (run.error or "")
    assert list((platform.settings.home / "tmp").glob("step-*")) == []
    assert find_leftovers(platform.settings) == ([], [])
