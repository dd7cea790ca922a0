"""Experiment tracking: runs, params, metric series, tags, artifacts, lineage, search."""

from ghaf.tracking.autolog import autolog
from ghaf.tracking.base import MetricPoint, Run
from ghaf.tracking.query import RunPage, search_runs
from ghaf.tracking.run import ActiveRun, active_run, start_run
from ghaf.tracking.service import (
    download_artifacts,
    get_metric_history,
    get_run,
    list_experiments,
)

__all__ = [
    "ActiveRun",
    "MetricPoint",
    "Run",
    "RunPage",
    "active_run",
    "autolog",
    "download_artifacts",
    "get_metric_history",
    "get_run",
    "list_experiments",
    "search_runs",
    "start_run",
]
