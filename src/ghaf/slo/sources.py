"""Event series for the engine: from (timestamp, good, total) rows, the prediction log,
or scrapes of a model server's ``/metrics`` (the counters the exported rules read)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

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


def counts_from_metrics(text: str, slo: SLO) -> tuple[float, float]:
    """(good, total) so far for ``slo``'s deployment in a Prometheus text exposition of
    ``ghaf serve``'s ``/metrics``: the series and labels the exported rules select
    (availability: ``ghaf_requests_total`` by code, good = not 5xx; latency:
    ``ghaf_request_seconds`` under the threshold's bucket)."""
    from ghaf.slo.prometheus import LATENCY, REQUESTS, latency_bound

    if slo.sli == "quality":
        raise InvalidInputError(
            f"SLO {slo.name!r} measures quality, which a model server's metrics do not count",
            hint="give a (ts, good, total) events table of labelled outcomes",
        )
    le = float(latency_bound(slo)) if slo.sli == "latency" else None
    good = total = 0.0
    for name, labels, value in _samples(text, (REQUESTS, f"{LATENCY}_")):
        if labels.get("model") != slo.deployment:
            continue
        if le is None and name == REQUESTS:
            total += value
            good += 0.0 if labels.get("code", "").startswith("5") else value
        elif le is not None and name == f"{LATENCY}_count":
            total += value
        elif le is not None and name == f"{LATENCY}_bucket":
            bound = labels.get("le", "+Inf")
            good += value if bound != "+Inf" and float(bound) == le else 0.0
    return good, total


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _samples(text: str, prefixes: tuple[str, ...]) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of the exposition's samples whose names start with one of
    ``prefixes`` (text format 0.0.4; comments and other families are skipped unparsed)."""
    for line in text.split("\n"):  # only \n ends a line (str.splitlines splits on more)
        if not line.startswith(prefixes):
            continue
        match = _SAMPLE.match(line)
        try:
            if match is None:
                raise ValueError(line)
            name, inner, value = match.groups()
            number = float(value)
        except ValueError:
            raise InvalidInputError(
                f"not a Prometheus sample line: {line[:200]!r}",
                hint="read a server's /metrics (Prometheus text format)",
            ) from None
        labels = {
            k: re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], v)
            for k, v in _LABEL.findall(inner or "")
        }
        yield name, labels, number


def from_counter_samples(
    samples: Sequence[tuple[float, float, float]], *, step: int = 60
) -> EventSeries:
    """Cumulative (time, good, total) counter samples -> per-bucket counts.

    The first sample is the baseline; buckets start at its time. What the counters grew
    by between two samples is counted in the bucket holding the later one (a counter
    that went down restarted from zero, as Prometheus's ``increase`` takes it).
    """
    if len(samples) < 2:
        raise InvalidInputError(
            "at least two scrapes are needed", hint="scrape before and after the traffic"
        )
    ts = np.array([s[0] for s in samples], dtype=np.float64)
    good = np.array([s[1] for s in samples], dtype=np.float64)
    total = np.array([s[2] for s in samples], dtype=np.float64)
    if np.any(np.diff(ts) <= 0):
        raise InvalidInputError("scrape times must increase", hint="sample in time order")
    start = float(ts[0])
    index = np.ceil((ts[1:] - start) / step).astype(np.int64) - 1
    size = int(index[-1]) + 1
    return EventSeries(
        start,
        step,
        np.bincount(index, weights=_increases(good), minlength=size).astype(np.int64),
        np.bincount(index, weights=_increases(total), minlength=size).astype(np.int64),
    )


def from_target_samples(
    by_target: Mapping[str, Sequence[tuple[float, float, float]]], *, step: int = 60
) -> EventSeries:
    """Cumulative (time, good, total) samples of several targets (the servers of one
    deployment, each with its own counters) -> one series of per-bucket counts.

    As :func:`from_counter_samples` for each target, on one clock: buckets start at the
    earliest sample of any target; a target's first sample is its own baseline.

    Raises:
        InvalidInputError: no target has two samples yet.
    """
    usable = {t: sorted(s) for t, s in by_target.items() if len(s) >= 2}
    if not usable:
        raise InvalidInputError(
            "at least two scrapes of one target are needed", hint="wait for the next scrape"
        )
    start = min(s[0][0] for s in usable.values())
    end = max(s[-1][0] for s in usable.values())
    size = max(1, int(np.ceil((end - start) / step)))
    good = np.zeros(size, dtype=np.float64)
    total = np.zeros(size, dtype=np.float64)
    for samples in usable.values():
        arr = np.asarray(samples, dtype=np.float64)
        index = np.maximum(np.ceil((arr[1:, 0] - start) / step).astype(np.int64) - 1, 0)
        good += np.bincount(index, weights=_increases(arr[:, 1]), minlength=size)[:size]
        total += np.bincount(index, weights=_increases(arr[:, 2]), minlength=size)[:size]
    # Two targets' counters are read a moment apart: never more good than total.
    good = np.minimum(good, total)
    return EventSeries(start, step, good.astype(np.int64), total.astype(np.int64))


def _increases(values: np.ndarray) -> np.ndarray:
    steps = np.diff(values)
    return np.where(steps >= 0, steps, values[1:])  # a reset counts from zero


class MetricsRecorder:
    """Scrapes of one SLO's counters, stamped by ``clock`` (an injected clock replays a
    day of traffic in seconds; the default is the wall clock)."""

    def __init__(
        self,
        slo: SLO,
        fetch: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slo = slo
        self.fetch = fetch
        self.clock = clock
        self.samples: list[tuple[float, float, float]] = []

    def scrape(self) -> tuple[float, float]:
        """Read the counters now; returns (good, total) so far."""
        good, total = counts_from_metrics(self.fetch(), self.slo)
        self.samples.append((self.clock(), good, total))
        return good, total

    def series(self, *, step: int = 60) -> EventSeries:
        """The scrapes so far as per-bucket counts (see :func:`from_counter_samples`)."""
        return from_counter_samples(self.samples, step=step)
