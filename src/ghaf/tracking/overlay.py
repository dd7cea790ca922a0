"""Reads for the UI's run comparison: many runs by id, one metric's curves of many runs in
one query (aligned on a shared step axis, thinned), and the metric and param keys in use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from ghaf.platform import Platform
from ghaf.tracking.base import Run
from ghaf.tracking.chunks import unpack_chunk
from ghaf.tracking.service import check_run_id, load_runs, run_query
from ghaf.tracking.tables import (
    ExperimentRow,
    LatestMetricRow,
    MetricChunkRow,
    RunParamRow,
    RunRow,
)

MAX_KEYS = 500
"""Keys offered by :func:`run_keys`, of each kind."""


@dataclass(frozen=True)
class Curves:
    """One metric of several runs on a shared x axis: ``values[i, j]`` is run ``i``'s
    value at ``steps[j]``, NaN where it logged none there (or logged a non-finite value).
    Values are float32: a chart's resolution, and half the bytes on the wire
    (``orjson.OPT_SERIALIZE_NUMPY`` writes each in its shortest form, NaN as null)."""

    key: str
    steps: np.ndarray[Any, Any]
    values: np.ndarray[Any, Any]
    thinned: bool


def runs_by_id(platform: Platform, run_ids: Sequence[str]) -> list[Run]:
    """The runs ``run_ids`` (params, tags, latest metrics; no environment) in that order;
    ids that name no run are left out."""
    for run_id in run_ids:
        check_run_id(run_id)
    with platform.read_session() as session:
        rows = list(session.connection().execute(run_query().where(RunRow.id.in_(run_ids))))
        found = {run.run_id: run for run in load_runs(session, rows)}
    return [found[run_id] for run_id in run_ids if run_id in found]


def _points(parts: list[tuple[Any, Any, Any]]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """One run's points ordered by step then time, the last point of each step kept."""
    steps = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    stamps = np.concatenate([p[2] for p in parts])
    order = np.lexsort((stamps, steps))
    steps, values = steps[order], values[order]
    last = np.ones(steps.size, dtype=bool)
    last[:-1] = steps[1:] != steps[:-1]
    return steps[last], values[last]


def metric_curves(platform: Platform, run_ids: Sequence[str], key: str, points: int) -> Curves:
    """Metric ``key`` of ``run_ids``, read in one query, on one step axis of at most
    ``points`` steps: the union of the runs' steps when it is that short, else ``points``
    equal buckets of the step range, each run keeping its last point in each bucket (drawn
    at the bucket's largest logged step)."""
    with platform.read_session() as session:
        rows = session.connection().execute(
            select(
                MetricChunkRow.run_id,
                MetricChunkRow.steps,
                MetricChunkRow.values,
                MetricChunkRow.timestamps,
            )
            .where(MetricChunkRow.run_id.in_(run_ids), MetricChunkRow.key == key)
            .order_by(MetricChunkRow.id)
        )
        parts: dict[str, list[tuple[Any, Any, Any]]] = {}
        for run_id, packed_steps, packed_values, packed_stamps in rows:
            chunk = unpack_chunk(packed_steps, packed_values, packed_stamps)
            parts.setdefault(run_id, []).append(chunk)
    series = {run_id: _points(chunks) for run_id, chunks in parts.items()}
    if not series:
        empty = np.zeros((len(run_ids), 0), dtype=np.float32)
        return Curves(key, np.zeros(0, dtype=np.int64), empty, False)
    union = np.unique(np.concatenate([s for s, _ in series.values()]))
    thinned = union.size > points
    if thinned:
        low, high = int(union[0]), int(union[-1])
        scale = (points - 1) / (high - low)

        def bucket(steps: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            return np.floor((steps - low) * scale).astype(np.int64)

        ends = np.full(points, low - 1, dtype=np.int64)
        np.maximum.at(ends, bucket(union), union)
        used = ends >= low
        axis = ends[used]
        column = np.cumsum(used) - 1  # bucket -> column of the axis
        for run_id, (steps, values) in series.items():
            cols = column[bucket(steps)]
            keep = np.ones(cols.size, dtype=bool)
            keep[:-1] = cols[1:] != cols[:-1]  # the last point of each bucket
            series[run_id] = (axis[cols[keep]], values[keep])
    else:
        axis = union
    table = np.full((len(run_ids), axis.size), np.nan, dtype=np.float32)
    for row, run_id in enumerate(run_ids):
        if run_id in series:
            steps, values = series[run_id]
            table[row, np.searchsorted(axis, steps)] = values
    table[~np.isfinite(table)] = np.nan
    return Curves(key, axis, table, thinned)


def run_keys(
    platform: Platform, projects: Sequence[str], experiments: Sequence[str] = ()
) -> tuple[list[str], list[str]]:
    """The metric keys and the param keys logged by runs of ``projects`` (and of
    ``experiments`` when given), sorted, at most :data:`MAX_KEYS` of each."""

    def keys(column: Any, run_column: Any) -> list[str]:
        query = (
            select(column)
            .distinct()
            .join(RunRow, RunRow.id == run_column)
            .where(RunRow.project.in_(list(projects)))
        )
        if experiments:
            query = query.join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id).where(
                ExperimentRow.name.in_(list(experiments))
            )
        with platform.read_session() as session:
            return list(session.execute(query.order_by(column).limit(MAX_KEYS)).scalars())

    if not projects:
        return [], []
    return (
        keys(LatestMetricRow.key, LatestMetricRow.run_id),
        keys(RunParamRow.key, RunParamRow.run_id),
    )
