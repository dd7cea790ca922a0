"""Seeded replays of traffic for the SLO tests: an outage, a slow burn, a quiet service."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ghaf.slo import SLO, EventSeries

START = 1_800_000_000.0  # a whole minute, so buckets align with promtool's 1m samples
STEP = 60


@dataclass(frozen=True)
class Scenario:
    name: str
    slo: SLO
    series: EventSeries
    per_minute: float
    """The steady request rate, for the budget a 30-day month of it allows."""
    onset: int | None = None
    """The bucket where the trouble starts."""


def _series(total: np.ndarray, bad: np.ndarray) -> EventSeries:
    return EventSeries(START, STEP, total - bad, total)


def fast_burn(seed: int = 7) -> Scenario:
    """4 h at 1,000 requests a minute (0.01% errors), then 10% errors for 30 min, then 90 min
    healthy: the budget of a 99.9% SLO burns at 100x."""
    rng = np.random.default_rng(seed)
    minutes, onset = 360, 240
    total = np.full(minutes, 1000, np.int64)
    p = np.full(minutes, 0.0001)
    p[onset : onset + 30] = 0.10
    bad = rng.binomial(total, p)
    slo = SLO("fraud-availability", "fraud", "availability", 0.999)
    return Scenario("fast-burn", slo, _series(total, bad), 1000.0, onset)


def slow_burn(seed: int = 11) -> Scenario:
    """Two days at 100 requests a minute with 0.3% errors: 3x the sustainable burn."""
    rng = np.random.default_rng(seed)
    minutes = 2 * 1440
    total = np.full(minutes, 100, np.int64)
    bad = rng.binomial(total, 0.003)
    slo = SLO("fraud-availability", "fraud", "availability", 0.999)
    return Scenario("slow-burn", slo, _series(total, bad), 100.0, 0)


def quiet(min_requests_per_hour: int = 100) -> Scenario:
    """Ten requests an hour (one every 6 minutes) for 6 h; the one at 3 h fails."""
    minutes = 360
    total = np.zeros(minutes, np.int64)
    total[::6] = 1
    bad = np.zeros(minutes, np.int64)
    bad[180] = 1
    slo = SLO(
        "fraud-availability",
        "fraud",
        "availability",
        0.999,
        min_requests_per_hour=min_requests_per_hour,
    )
    return Scenario("quiet", slo, _series(total, bad), 10 / 60, 180)


def slow_responses(seed: int = 7) -> Scenario:
    """The fast burn's counts as a latency SLO: 10% of requests over 250 ms for 30 min."""
    burst = fast_burn(seed)
    slo = SLO("fraud-latency", "fraud", "latency", 0.999, threshold_ms=250)
    return Scenario("slow-responses", slo, burst.series, burst.per_minute, burst.onset)
