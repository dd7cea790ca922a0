"""SLO definitions through the spine, and verdicts fired as alerts that dedupe into incidents."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from ghaf.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from ghaf.incidents import list_incidents
from ghaf.platform import Platform
from ghaf.slo import SLO, verdicts_at
from ghaf.slo.alerting import alerts_for, fire_verdicts
from ghaf.slo.sources import from_prediction_log, from_table
from ghaf.slo.store import define_slo, get_slo, list_slos
from ghaf.testing.people import person
from tests.unit.slo.scenarios import fast_burn


def test_an_sre_defines_and_redefines_an_slo_a_viewer_may_not(platform: Platform) -> None:
    sre = person(platform, "sam", ["sre"])
    define_slo(platform, sre, SLO("fraud-availability", "fraud", "availability", 0.999))
    define_slo(platform, sre, SLO("fraud-availability", "fraud", "availability", 0.995))
    define_slo(platform, sre, SLO("fraud-latency", "fraud", "latency", 0.99, threshold_ms=250))
    assert [s.name for s in list_slos(platform)] == ["fraud-availability", "fraud-latency"]
    assert get_slo(platform, "fraud-availability").objective == 0.995
    viewer = person(platform, "vic", ["viewer"])
    with pytest.raises(PermissionDeniedError):
        define_slo(platform, viewer, SLO("x", "fraud", "availability", 0.9))
    with pytest.raises(NotFoundError):
        get_slo(platform, "x")


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"objective": 1.5}, "objective"),
        ({"sli": "uptime"}, "sli"),
        ({"sli": "latency"}, "threshold_ms"),
        ({"name": "Bad Name"}, "name"),
    ],
)
def test_a_bad_definition_names_its_field(fields: dict[str, object], named: str) -> None:
    base: dict[str, object] = {
        "name": "s",
        "deployment": "fraud",
        "sli": "availability",
        "objective": 0.99,
    }
    with pytest.raises(InvalidInputError, match=named):
        SLO(**{**base, **fields})  # type: ignore[arg-type]


def test_a_burning_slo_opens_one_incident_per_window_pair(platform: Platform) -> None:
    s = fast_burn()
    sre = person(platform, "sam", ["sre"])
    times = s.series.times()
    assert s.onset is not None
    during = [float(t) for t in times[s.onset + 15 : s.onset + 25]]
    fired: dict[str, int] = {}  # fingerprint -> minutes it fired
    for at in during:  # the evaluator runs each minute; each run re-fires what burns
        verdicts = verdicts_at(s.slo, s.series, at)
        for alert in alerts_for(s.slo, verdicts):
            fired[alert.fingerprint] = fired.get(alert.fingerprint, 0) + 1
        fire_verdicts(platform, sre, s.slo, verdicts)
    page = alerts_for(s.slo, verdicts_at(s.slo, s.series, during[0]))[0]
    assert page.labels["long_window"] == "1h"
    assert page.severity == "critical"
    assert fired[page.fingerprint] == len(during)
    incidents = list_incidents(platform)
    assert {i.fingerprint: i.alert_count for i in incidents} == fired
    assert all(i.deployment == "fraud" for i in incidents)
    # Nothing burning: nothing fired.
    assert (
        fire_verdicts(platform, sre, s.slo, verdicts_at(s.slo, s.series, float(times[10]))) is None
    )


def test_sources_bucket_rows_and_the_prediction_log() -> None:
    table = pa.table({"ts": [0.0, 30.0, 61.0, 200.0], "good": [1, 0, 3, 2], "total": [1, 1, 4, 2]})
    series = from_table(table)
    np.testing.assert_array_equal(series.total, [2, 4, 0, 2])
    np.testing.assert_array_equal(series.good, [1, 3, 0, 2])
    log = pa.table({"ts": [1000.0, 2000.0, 70_000.0], "latency_ms": [10.0, 400.0, 20.0]})
    slo = SLO("lat", "fraud", "latency", 0.99, threshold_ms=250)
    series = from_prediction_log(log, slo)
    np.testing.assert_array_equal(series.total, [2, 1])
    np.testing.assert_array_equal(series.good, [1, 1])
    with pytest.raises(InvalidInputError, match="prediction log measures latency"):
        from_prediction_log(log, SLO("a", "fraud", "availability", 0.99))
    with pytest.raises(InvalidInputError, match="'good'"):
        from_table(pa.table({"ts": [0.0], "total": [1]}))
