"""A running step sees its run, its step run, the runner's home and the actor who started it."""

from __future__ import annotations

import pytest

from ghaf.errors import InvalidInputError, PermissionDeniedError
from ghaf.pipelines import Pipeline, current_step, output_of, run_pipeline
from ghaf.pipelines.context import StepContext, step_context
from ghaf.pipelines.examples import whoami
from ghaf.pipelines.local import LocalExecutor
from ghaf.platform import Platform


def test_a_step_acts_as_the_actor_that_started_its_run(platform: Platform) -> None:
    pipeline = Pipeline("who")
    pipeline.add(whoami)
    executor = LocalExecutor(1)
    try:
        run = run_pipeline(platform, platform.admin(), pipeline, executor=executor)
    finally:
        executor.close()
    assert run.status == "succeeded", run.error
    assert output_of(platform, run, "whoami") == {
        "actor": platform.admin().name,
        "run": run.id,
        "step_run": run.step("whoami").id,
        "home": str(platform.settings.home),
    }


def test_outside_a_step_there_is_no_context(platform: Platform) -> None:
    with pytest.raises(InvalidInputError, match="not running inside a pipeline step"):
        current_step()
    with step_context(StepContext("r", "s", platform, None)) as context:
        assert current_step() is context
        assert context.node == "run:s"
        with pytest.raises(PermissionDeniedError, match="carries no actor"):
            _ = context.actor
    with pytest.raises(InvalidInputError):
        current_step()
