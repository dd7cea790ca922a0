"""Event series for the engine: from (timestamp, good, total) rows or the prediction log."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ghaf.errors import InvalidInputError
from ghaf.slo.base import SLO
from ghaf.slo.engine import EventSeries


def bucket_counts(
    ts: np.ndarray, good: np.ndarray, total: np.ndarray, *, step: int = 60
) -> EventSeries:
    """Rows of (epoch seconds, good, total) summed into ``step``-second buckets."""
    if len(ts) == 0:
        raise InvalidInputError("no events to evaluate", hint="give at least one row")
    start = float(np.floor(ts.min() / step) * step)
    index = ((ts - start) // step).astype(np.int64)
    size = int(index.max()) + 1
    return EventSeries(
        start,
        step,
        np.bincount(index, weights=good, minlength=size).astype(np.int64),
        np.bincount(index, weights=total, minlength=size).astype(np.int64),
    )


def from_table(table: pa.Table, *, step: int = 60) -> EventSeries:
    """A table with columns ``ts`` (epoch seconds), ``good`` and ``total``."""
    missing = [c for c in ("ts", "good", "total") if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"events column {missing[0]!r} is missing", hint="give columns ts, good and total"
        )
    return bucket_counts(
        table["ts"].to_numpy().astype(np.float64),
        table["good"].to_numpy().astype(np.int64),
        table["total"].to_numpy().astype(np.int64),
        step=step,
    )


def from_prediction_log(table: pa.Table, slo: SLO, *, step: int = 60) -> EventSeries:
    """A latency SLO's events from the prediction log (``ts`` in ms, ``latency_ms``).

    The log holds the requests a model answered, so it measures latency; availability
    needs the server's request counters (errors are not logged as predictions).
    """
    if slo.sli != "latency" or slo.threshold_ms is None:
        raise InvalidInputError(
            f"SLO {slo.name!r} measures {slo.sli}; the prediction log measures latency",
            hint="give a (ts, good, total) events table for availability or quality SLOs",
        )
    ts = table["ts"].to_numpy().astype(np.float64) / 1000.0
    good = (table["latency_ms"].to_numpy() < slo.threshold_ms).astype(np.int64)
    return bucket_counts(ts, good, np.ones(len(ts), np.int64), step=step)
