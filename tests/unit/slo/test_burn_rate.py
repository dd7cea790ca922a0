"""The replayed outage: fast burn pages in time, slow burn tickets, a quiet service pages nobody."""

from __future__ import annotations

import numpy as np

from ghaf.slo import evaluate, first_firing, verdicts_at
from tests.unit.slo.scenarios import START, STEP, fast_burn, quiet, slow_burn


def test_fast_burn_pages_within_five_minutes_of_two_percent_of_the_budget() -> None:
    s = fast_burn()
    monthly_budget = s.slo.budget * s.per_minute * 30 * 1440  # bad events a month allows
    burned = np.cumsum(s.series.bad) / monthly_budget
    two_percent_at = s.series.times()[np.flatnonzero(burned >= 0.02)[0]]
    fired = first_firing(s.slo, s.series)
    page = fired["1h"]
    assert page is not None
    assert s.onset is not None
    assert page > START + s.onset * STEP, "nothing pages before the outage"
    assert 0 <= page - two_percent_at <= 5 * 60, (page - two_percent_at) / 60
    verdict = {v.window: v for v in verdicts_at(s.slo, s.series, page)}["1h"]
    assert verdict.action == "page"
    assert verdict.burn_long > 14.4
    assert verdict.burn_short > 14.4


def test_fast_burn_stops_paging_after_recovery() -> None:
    s = fast_burn()
    end = verdicts_at(s.slo, s.series, float(s.series.times()[-1]))
    assert [v.action for v in end if v.window == "1h"] == ["none"]


def test_slow_burn_raises_a_ticket_and_no_page() -> None:
    s = slow_burn()
    fired = first_firing(s.slo, s.series)
    assert fired["1h"] is None
    assert fired["6h"] is None
    assert fired["3d"] is not None
    last = {v.window: v for v in verdicts_at(s.slo, s.series, float(s.series.times()[-1]))}
    assert last["3d"].action == "ticket"
    assert 1.0 < last["3d"].burn_long < 6.0


def test_one_error_at_ten_requests_an_hour_pages_nobody() -> None:
    s = quiet()
    assert all(not e.firing.any() for e in evaluate(s.slo, s.series))
    # The minimum-traffic rule is what holds it back: without it, the error pages.
    loud = quiet(min_requests_per_hour=0)
    assert first_firing(loud.slo, loud.series)["1h"] is not None


def test_the_package_exports_a_pinned_handful() -> None:
    import ghaf.slo

    assert sorted(ghaf.slo.__all__) == sorted(
        [
            "DEFAULT_WINDOWS",
            "SLO",
            "BurnWindow",
            "EventSeries",
            "Verdict",
            "evaluate",
            "first_firing",
            "verdicts_at",
        ]
    )
