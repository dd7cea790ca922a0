"""Properties: burn rate is error ratio / budget, and the windows match a NumPy recount."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.slo import SLO, EventSeries, evaluate
from ghaf.slo.engine import burn_rate, error_ratio

_counts = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=400)


def _series(pairs: list[tuple[int, int]]) -> EventSeries:
    total = np.array([a + b for a, b in pairs], np.int64)
    good = np.array([a for a, _ in pairs], np.int64)
    return EventSeries(0.0, 60, good, total)


def _recount(series: EventSeries, minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Bad and total of the ``minutes`` buckets ending at each evaluation, one by one."""
    n = len(series.total)
    bad = np.array([series.bad[max(0, k + 1 - minutes) : k + 1].sum() for k in range(n)])
    total = np.array([series.total[max(0, k + 1 - minutes) : k + 1].sum() for k in range(n)])
    return bad, total


@settings(max_examples=60, deadline=None)
@given(_counts, st.sampled_from([0.9, 0.99, 0.995, 0.999]), st.sampled_from([5, 30, 60, 360]))
def test_burn_rate_is_error_ratio_over_budget(
    pairs: list[tuple[int, int]], objective: float, minutes: int
) -> None:
    series = _series(pairs)
    slo = SLO("s", "d", "availability", objective)
    bad, total = _recount(series, minutes)
    ratio = error_ratio(series, minutes * 60)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(total > 0, bad / total, np.nan)
    np.testing.assert_allclose(ratio, expected, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(
        burn_rate(series, slo, minutes * 60), expected / (1 - objective), rtol=1e-9, equal_nan=True
    )


@settings(max_examples=40, deadline=None)
@given(_counts, st.integers(0, 200))
def test_windows_and_conditions_equal_a_numpy_recomputation(
    pairs: list[tuple[int, int]], min_per_hour: int
) -> None:
    series = _series(pairs)
    slo = SLO("s", "d", "availability", 0.99, min_requests_per_hour=min_per_hour)
    for e in evaluate(slo, series):
        w = e.window
        bad_l, tot_l = _recount(series, w.long_s // 60)
        bad_s, tot_s = _recount(series, w.short_s // 60)
        np.testing.assert_array_equal(e.requests_long, tot_l)
        limit = w.factor * (1 - 0.99)
        cond = [
            tot_l[k] > 0
            and tot_s[k] > 0
            and bad_l[k] / tot_l[k] > limit
            and bad_s[k] / tot_s[k] > limit
            and tot_l[k] >= min_per_hour * w.long_s / 3600
            for k in range(len(series.total))
        ]
        # Ratios within a rounding error of the limit may fall either way; skip those.
        near = [
            tot_l[k] > 0
            and tot_s[k] > 0
            and (abs(bad_l[k] / tot_l[k] - limit) < 1e-9 or abs(bad_s[k] / tot_s[k] - limit) < 1e-9)
            for k in range(len(series.total))
        ]
        keep = ~np.array(near, bool)
        np.testing.assert_array_equal(e.condition[keep], np.array(cond, bool)[keep])
        # firing = the condition held at every evaluation of the last ``for`` span
        span = w.for_s // 60 + 1
        fired = [
            k + 1 >= span and bool(e.condition[k + 1 - span : k + 1].all())
            for k in range(len(series.total))
        ]
        np.testing.assert_array_equal(e.firing, np.array(fired, bool))
