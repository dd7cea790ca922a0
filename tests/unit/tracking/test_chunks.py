"""Metric chunks: any sequence of flushes gives the history and latest/min/max a list would."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghaf.platform import Platform
from ghaf.tracking import get_metric_history, get_run
from ghaf.tracking.service import create_run, log_batch

points = st.tuples(
    st.sampled_from(["a", "b"]),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(0, 5),
    st.sampled_from([1.0, 2.0, 3.0]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flushes=st.lists(st.lists(points, min_size=1, max_size=12), min_size=1, max_size=4))
def test_history_and_latest_match_a_reference(platform: Platform, flushes: list) -> None:
    run_id = create_run(platform, platform.admin(), "chunks")
    for batch in flushes:
        log_batch(platform, platform.admin(), run_id, metrics=batch)
    logged = [p for batch in flushes for p in batch]
    run = get_run(platform, run_id, with_env=False)
    for key in {p[0] for p in logged}:
        mine = [(p[2], p[3], p[1]) for p in logged if p[0] == key]
        expected = sorted(mine, key=lambda t: (t[0], t[1]))  # stable, like the store
        history = get_metric_history(platform, run_id, key)
        assert [(h.step, h.timestamp, h.value) for h in history] == expected
        assert run.metrics[key] == expected[-1][2]
        assert run.metric_min[key] == min(v for *_, v in mine)
        assert run.metric_max[key] == max(v for *_, v in mine)
