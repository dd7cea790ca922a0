"""The burn-rate engine: good/total counts per time bucket -> verdicts per window pair.

Vectorized over every evaluation time at once (cumulative sums), so a month of minute
buckets evaluates in milliseconds; the same arithmetic as the exported Prometheus rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ghaf.errors import InvalidInputError
from ghaf.slo.base import SLO, BurnWindow


@dataclass(frozen=True)
class EventSeries:
    """Counts of good and total events per bucket; bucket ``i`` covers
    ``[start + i*step, start + (i+1)*step)`` in epoch seconds."""

    start: float
    step: int
    good: np.ndarray
    total: np.ndarray

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise InvalidInputError("event series 'step' must be positive", hint="e.g. 60")
        if self.good.shape != self.total.shape or self.good.ndim != 1:
            raise InvalidInputError(
                "event series 'good' and 'total' must be 1-d and of one length",
                hint="one count of each per bucket",
            )
        if np.any(self.good < 0) or np.any(self.good > self.total):
            raise InvalidInputError(
                "event series 'good' must be between 0 and 'total' in every bucket",
                hint="count good events among the total, not beside it",
            )

    @property
    def bad(self) -> np.ndarray:
        bad: np.ndarray = self.total - self.good
        return bad

    def times(self) -> np.ndarray:
        """The evaluation times: the end of each bucket."""
        return self.start + self.step * np.arange(1, len(self.total) + 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"start", "step", "good": [...], "total": [...]}``."""
        return {
            "start": self.start,
            "step": self.step,
            "good": self.good.tolist(),
            "total": self.total.tolist(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> EventSeries:
        """The inverse of :meth:`to_dict` (counts checked as the constructor checks them)."""
        try:
            good = np.asarray(doc["good"], dtype=np.int64)
            total = np.asarray(doc["total"], dtype=np.int64)
        except (OverflowError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"event series 'good' and 'total' must be lists of counts: {exc}",
                hint="whole numbers from 0 to 2**53",
            ) from exc
        return cls(float(doc["start"]), int(doc["step"]), good, total)


def window_sums(counts: np.ndarray, buckets: int) -> np.ndarray:
    """Sum of the ``buckets`` buckets ending at each evaluation (fewer at the start)."""
    cum = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    ends = np.arange(1, len(counts) + 1)
    sums: np.ndarray = cum[ends] - cum[np.maximum(ends - buckets, 0)]
    return sums


def error_ratio(series: EventSeries, seconds: int) -> np.ndarray:
    """Bad/total over the ``seconds`` ending at each evaluation; NaN with no traffic."""
    buckets = _buckets(series, seconds)
    bad = window_sums(series.bad, buckets).astype(np.float64)
    total = window_sums(series.total, buckets).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, bad / np.where(total > 0, total, 1.0), np.nan)


def burn_rate(series: EventSeries, slo: SLO, seconds: int) -> np.ndarray:
    """How many times faster than sustainable the budget burns: error ratio / budget."""
    return error_ratio(series, seconds) / slo.budget


def _buckets(series: EventSeries, seconds: int) -> int:
    if seconds % series.step:
        raise InvalidInputError(
            f"window of {seconds}s is not a whole number of {series.step}s buckets",
            hint="use a bucket step that divides every window (60 s does)",
        )
    return seconds // series.step


@dataclass(frozen=True)
class WindowEvaluation:
    """One window pair over every evaluation time."""

    window: BurnWindow
    burn_long: np.ndarray
    burn_short: np.ndarray
    requests_long: np.ndarray
    condition: np.ndarray
    firing: np.ndarray


@dataclass(frozen=True)
class Verdict:
    """What one window pair says at one time: page, ticket or none."""

    slo: str
    window: str
    severity: str
    firing: bool
    burn_long: float
    burn_short: float
    requests_long: int
    at: float

    @property
    def action(self) -> str:
        return self.severity if self.firing else "none"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "action": self.action}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Verdict:
        return cls(**{k: v for k, v in doc.items() if k != "action"})


def evaluate(slo: SLO, series: EventSeries) -> list[WindowEvaluation]:
    """Every window pair of ``slo`` evaluated at the end of every bucket.

    A pair's condition holds when both windows' error ratios exceed ``factor * budget``
    and the long window saw at least the minimum traffic; it fires once the condition
    held at every evaluation for the pair's ``for`` duration (as Prometheus does).
    """
    out = []
    arange = np.arange(len(series.total))
    for window in slo.windows:
        long_ratio = error_ratio(series, window.long_s)
        short_ratio = error_ratio(series, window.short_s)
        requests = window_sums(series.total, _buckets(series, window.long_s))
        limit = slo.threshold(window)
        with np.errstate(invalid="ignore"):
            condition = (
                (long_ratio > limit)
                & (short_ratio > limit)
                & (requests >= slo.min_requests(window))
            )
        last_false = np.maximum.accumulate(np.where(condition, -1, arange))
        held = arange - last_false  # consecutive evaluations with the condition true
        firing = held >= window.for_s // series.step + 1
        out.append(
            WindowEvaluation(
                window,
                long_ratio / slo.budget,
                short_ratio / slo.budget,
                requests,
                condition,
                firing,
            )
        )
    return out


def verdicts_at(slo: SLO, series: EventSeries, at: float) -> list[Verdict]:
    """The verdict of each window pair at time ``at`` (the end of a bucket)."""
    index = round((at - series.start) / series.step) - 1
    if not 0 <= index < len(series.total):
        raise InvalidInputError(
            f"time {at} is outside the series", hint="evaluate between its first and last bucket"
        )
    return [
        Verdict(
            slo.name,
            e.window.name,
            e.window.severity,
            bool(e.firing[index]),
            float(e.burn_long[index]),
            float(e.burn_short[index]),
            int(e.requests_long[index]),
            float(series.times()[index]),
        )
        for e in evaluate(slo, series)
    ]


def status(slo: SLO, series: EventSeries, at: float | None = None) -> dict[str, Any]:
    """What ``ghaf slo status`` shows: each window pair's verdict at ``at`` (default: the
    end of the last bucket), as ``{"slo", "at", "verdicts": [{"window", "action", ...}]}``."""
    if len(series.total) == 0:
        raise InvalidInputError("the event series has no buckets", hint="give at least one")
    when = float(series.times()[-1]) if at is None else at
    return {
        "slo": slo.name,
        "at": when,
        "verdicts": [v.to_dict() for v in verdicts_at(slo, series, when)],
    }


def first_firing(slo: SLO, series: EventSeries) -> dict[str, float | None]:
    """For each window pair, the first time it fires (epoch seconds), or None."""
    times = series.times()
    out: dict[str, float | None] = {}
    for e in evaluate(slo, series):
        hits = np.flatnonzero(e.firing)
        out[e.window.name] = float(times[hits[0]]) if len(hits) else None
    return out
