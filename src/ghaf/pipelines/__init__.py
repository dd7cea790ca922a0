"""Pipelines: typed steps, a DAG, executors (local processes, Ray), caching, triggers."""

from ghaf.pipelines.base import Executor, PipelineRun, StepRun
from ghaf.pipelines.context import StepContext, current_step
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.records import get_run, list_runs
from ghaf.pipelines.runner import output_of, run_pipeline
from ghaf.pipelines.step import Step, step

__all__ = [
    "Executor",
    "Pipeline",
    "PipelineRun",
    "Step",
    "StepContext",
    "StepRun",
    "current_step",
    "get_run",
    "list_runs",
    "output_of",
    "run_pipeline",
    "step",
]
