"""Monitors as a pipeline: one step that runs the due monitors of the run's project as the
run's actor, so a cron trigger (``CronTrigger("monitors", "*/5 * * * *", monitors)``) or
``ghaf pipelines run ghaf.monitoring.steps:monitors`` is the scheduler."""

from __future__ import annotations

from typing import Any

from ghaf.pipelines.context import current_step
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.step import step


@step(cache=False)
def run_due(deployment: str = "") -> dict[str, Any]:
    """Run the monitors that are due (or ``deployment``'s now); a summary of each run."""
    from ghaf.monitoring.monitors import run_due_monitors, run_monitor

    context = current_step()
    if deployment:
        runs = [run_monitor(context.platform, context.actor, deployment)]
    else:
        runs = run_due_monitors(context.platform, context.actor)
    return {
        "runs": [
            {
                "deployment": run.deployment,
                "window_end": run.window_end.isoformat(),
                "results": {r.model_version: r.status for r in run.results},
                "breaches": {r.model_version: list(r.breaches) for r in run.results if r.breaches},
                "events": list(run.events),
            }
            for run in runs
        ]
    }


def monitors(deployment: str = "") -> Pipeline:
    """The monitors pipeline: ``run_due`` (every due monitor, or ``deployment``'s now)."""
    pipeline = Pipeline("monitors", "run the scheduled monitors that are due")
    pipeline.add(run_due, deployment=pipeline.param("deployment", deployment))
    return pipeline
