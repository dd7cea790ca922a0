"""The SLO source over a model server's /metrics: the counters as prometheus_client's own
parser reads them (hypothesis over label values and counts), and scrapes into buckets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ghaf.errors import InvalidInputError
from ghaf.serving.metrics import Metrics
from ghaf.slo import SLO
from ghaf.slo.sources import MetricsRecorder, counts_from_metrics, from_counter_samples

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
codes = st.sampled_from([200, 400, 404, 429, 500, 503])
requests = st.lists(
    st.tuples(names, st.sampled_from(["1", "2"]), codes, st.floats(0.0, 3.0)), max_size=40
)


def _reference(text: str, slo: SLO) -> tuple[float, float]:
    """The same counts through prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    good = total = 0.0
    bound = (slo.threshold_ms or 0) / 1000
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("model") != slo.deployment:
                continue
            if slo.sli == "availability" and s.name == "ghaf_requests_total":
                total += s.value
                good += 0 if s.labels["code"].startswith("5") else s.value
            elif slo.sli == "latency" and s.name == "ghaf_request_seconds_count":
                total += s.value
            elif slo.sli == "latency" and s.name == "ghaf_request_seconds_bucket":
                le = s.labels["le"]
                good += s.value if le != "+Inf" and float(le) == bound else 0
    return good, total


@settings(max_examples=60, deadline=None)
@given(requests, st.sampled_from(["availability", "latency"]))
def test_counts_agree_with_prometheus_client(observed: list[tuple[str, str, int, float]],
                                              sli: str) -> None:  # fmt: skip
    metrics = Metrics()
    for model, version, code, seconds in observed:
        metrics.observe_request(model, version, code, seconds)
    deployment = observed[0][0] if observed else "fraud"
    slo = SLO("s", deployment, sli, 0.99, threshold_ms=250 if sli == "latency" else None)
    text = metrics.render()
    got = counts_from_metrics(text, slo)
    assert got == _reference(text, slo)
    mine = [o for o in observed if o[0] == deployment]
    if sli == "availability":
        assert got == (sum(o[2] < 500 for o in mine), len(mine))
    else:
        assert got == (sum(o[3] <= 0.25 for o in mine), len(mine))


def test_scrapes_become_buckets_and_a_restart_counts_from_zero() -> None:
    samples = [(100.0, 5, 5), (160.0, 8, 10), (220.0, 8, 10), (280.0, 2, 3), (400.0, 4, 6)]
    series = from_counter_samples(samples)
    assert series.start == 100.0
    np.testing.assert_array_equal(series.total, [5, 0, 3, 0, 3])  # the restart: 3 from zero
    np.testing.assert_array_equal(series.good, [3, 0, 2, 0, 2])
    with pytest.raises(InvalidInputError, match="two scrapes"):
        from_counter_samples(samples[:1])
    with pytest.raises(InvalidInputError, match="increase"):
        from_counter_samples([(1.0, 0, 0), (1.0, 0, 0)])


def test_a_recorder_stamps_scrapes_with_its_clock() -> None:
    metrics = Metrics()
    now = [1000.0]
    slo = SLO("s", "fraud", "availability", 0.999)
    recorder = MetricsRecorder(slo, metrics.render, lambda: now[0])
    recorder.scrape()
    for code in (200, 200, 500):
        metrics.observe_request("fraud", "1", code, 0.01)
    now[0] += 60
    assert recorder.scrape() == (2.0, 3.0)
    series = recorder.series()
    assert (series.start, list(series.total), list(series.bad)) == (1000.0, [3], [1])
    with pytest.raises(InvalidInputError, match="quality"):
        counts_from_metrics("", SLO("q", "fraud", "quality", 0.9))
    with pytest.raises(InvalidInputError, match="not a Prometheus sample line"):
        counts_from_metrics('ghaf_requests_total{model="fraud"} many\n', slo)
