"""The replayed outage through a real ``ghaf serve`` (issue 21's first acceptance line),
judged on demand and by the live loop's scheduled SLOs.

A served model fails on a planted input (a category its one-hot encoder never saw: a
real 500 from the model, not a fake). Seeded traffic goes to the server as real HTTP
requests, one simulated minute at a time; after each minute the SLO's counters are read
from the server's own ``/metrics`` and stamped by a simulated clock, so hours of traffic
replay in seconds and nothing sleeps. The engine then judges the scraped series: the
fast burn pages within 5 minutes of 2% of the budget burning, a slow burn raises a
ticket and pages nobody, and one error at 10 requests an hour pages nobody. The rules
``ghaf slo export-rules`` writes give the same verdicts on the same series under
``promtool test rules``. Scheduled (``ghaf slo schedule``), the loop reads the same
counters itself, keeps them in the home, pages at the minute the engine says, opens the
incident, and resolves the page once the burst is over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from ghaf.slo import SLO, EventSeries, evaluate, first_firing, verdicts_at
from ghaf.slo.prometheus import export_rules, promtool_test
from ghaf.slo.sources import MetricsRecorder
from ghaf.testing.people import mint
from tests.unit.serving.server_processes import ServerProcess, bearer, register_champion
from tests.unit.slo.scenarios import START, STEP, Scenario
from tests.unit.slo.test_promtool import _promtool, _run, _stable_indices

pytestmark = pytest.mark.slow
GOOD = [1.0, 2.0]
PLANTED = [9.0, 0.0]
"""A category the encoder never saw in column 0: the model raises, the server answers 500."""
MONTH_MINUTES = 30 * 1440


class SimulatedClock:
    """The evaluation side's clock: it moves only when the replay says a minute passed."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Served:
    url: str
    client: httpx.Client
    home: Path

    def infer(self, row: list[float]) -> int:
        body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": row}]}
        return self.client.post("/v2/models/fraud/infer", json=body).status_code

    def metrics(self) -> str:
        reply = self.client.get("/metrics")
        reply.raise_for_status()
        return reply.text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``ghaf serve fraud@champion`` (one process) with the failing-on-purpose model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from ghaf.home import init_home
    from ghaf.settings import load_settings

    root = tmp_path_factory.mktemp("outage")
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(400, 2)).astype(np.float64)
    y = (x[:, 0] + x[:, 1] > 3).astype(int)
    model = make_pipeline(OneHotEncoder(handle_unknown="error"), LogisticRegression()).fit(x, y)
    with init_home(load_settings(home=root / "home")) as platform:
        register_champion(platform, model, root / "saved", x[:3])
        token = mint(platform, "svc-scorer", ["model_server", "viewer"], kind="service")
        server = ServerProcess(
            platform.settings.home,
            ("serve", "fraud@champion", "--metrics-public"),
            "/v2/health/ready",
            root / "serve.log",
        ).start()
        try:
            with httpx.Client(base_url=server.url, headers=bearer(token), timeout=30) as client:
                served = Served(server.url, client, platform.settings.home)
                assert served.infer(GOOD) == 200 and served.infer(PLANTED) == 500
                yield served
        finally:
            log = server.stop()
        assert "Traceback" not in log, log


def replay(served: Served, slo: SLO, minutes: list[tuple[int, int]]) -> EventSeries:
    """Send each minute's (good, planted) requests, then scrape; returns what was scraped."""
    clock = SimulatedClock(START)
    recorder = MetricsRecorder(slo, served.metrics, clock)
    recorder.scrape()  # the baseline: what earlier replays left in the counters
    for good, bad in minutes:
        for _ in range(good):
            assert served.infer(GOOD) == 200
        for _ in range(bad):
            assert served.infer(PLANTED) == 500
        clock.advance(STEP)
        recorder.scrape()
    series = recorder.series(step=STEP)
    sent = np.array(minutes)
    np.testing.assert_array_equal(series.total, sent.sum(axis=1))  # every request counted
    np.testing.assert_array_equal(series.bad, sent[:, 1])
    return series


def agrees_under_promtool(
    slo: SLO, series: EventSeries, tmp: Path, *, fires: bool, every: int
) -> None:
    """The exported rules fire exactly what the engine fires, on the scraped series (at
    points away from threshold crossings; ``fires``: some of them while firing)."""
    promtool = _promtool()
    rules = tmp / f"{slo.name}.rules.yaml"
    rules.write_text(export_rules([slo]))
    scenario = Scenario(slo.name, slo, series, 0.0)
    expected = promtool_test(slo, series, _stable_indices(scenario, every), rules.name)
    cases = expected["tests"][0]["alert_rule_test"]
    firing = sum(bool(c["exp_alerts"]) for c in cases)
    assert (0 < firing < len(cases)) if fires else (firing == 0 and cases), (firing, len(cases))
    spec = tmp / f"{slo.name}.test.yaml"
    spec.write_text(yaml.safe_dump(expected, sort_keys=False, width=10_000))
    tested = _run(promtool, "test", "rules", str(spec))
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-4000:]


def test_fast_burn_pages_within_five_minutes_of_two_percent_of_the_budget(
    served: Served, tmp_path: Path
) -> None:
    slo = SLO("fraud-availability", "fraud", "availability", 0.999)
    rng = np.random.default_rng(7)
    per_minute, onset = 5, 60  # an hour of healthy traffic, then 20% fail for 30 minutes
    p = np.where(np.arange(90) < onset, 0.0005, 0.2)
    bad = rng.binomial(per_minute, p)
    series = replay(served, slo, [(per_minute - int(b), int(b)) for b in bad])

    budget = slo.budget * per_minute * MONTH_MINUTES  # bad requests a month allows
    burned = np.cumsum(series.bad) / budget
    two_percent_at = float(series.times()[np.flatnonzero(burned >= 0.02)[0]])
    page = first_firing(slo, series)["1h"]
    assert page is not None and page > START + onset * STEP, "nothing pages before the burst"
    assert 0 <= page - two_percent_at <= 5 * 60, (page - two_percent_at) / 60
    verdict = {v.window: v for v in verdicts_at(slo, series, page)}["1h"]
    assert verdict.action == "page" and verdict.burn_long > 14.4
    agrees_under_promtool(slo, series, tmp_path, fires=True, every=1)


def test_slow_burn_raises_a_ticket_and_pages_nobody(served: Served, tmp_path: Path) -> None:
    """Three times the sustainable error rate, steady: every 333rd request fails.

    The SLO asks for 10 requests an hour (not 100) so that 150 simulated minutes at 10
    requests a minute fill the 3-day window's minimum traffic and hold the ticket's hour;
    the default's 7,200 requests would make this one test cost more than the whole file.
    """
    slo = SLO("fraud-slow", "fraud", "availability", 0.999, min_requests_per_hour=10)
    per_minute, minutes = 10, 150
    failing = (np.arange(per_minute * minutes) + 1) % 333 == 0
    bad = failing.reshape(minutes, per_minute).sum(axis=1)
    series = replay(served, slo, [(per_minute - int(b), int(b)) for b in bad])

    fired = first_firing(slo, series)
    assert fired["1h"] is None and fired["6h"] is None, fired
    assert fired["3d"] is not None
    last = {v.window: v for v in verdicts_at(slo, series, float(series.times()[-1]))}
    assert last["3d"].action == "ticket"
    assert 1.0 < last["3d"].burn_long < 6.0
    agrees_under_promtool(slo, series, tmp_path, fires=True, every=2)


def test_one_error_at_ten_requests_an_hour_pages_nobody(served: Served, tmp_path: Path) -> None:
    slo = SLO("fraud-quiet", "fraud", "availability", 0.999)  # the default 100 requests/hour
    minutes = [(0, 0)] * 360
    for m in range(0, 360, 6):  # one request every 6 minutes for 6 hours...
        minutes[m] = (1, 0)
    minutes[180] = (0, 1)  # ...and the one at 3 h fails
    series = replay(served, slo, minutes)
    assert all(not e.firing.any() for e in evaluate(slo, series))
    # The minimum-traffic rule is what holds it back: without it, the same series pages.
    loud = SLO("fraud-quiet", "fraud", "availability", 0.999, min_requests_per_hour=0)
    assert first_firing(loud, series)["1h"] is not None
    agrees_under_promtool(slo, series, tmp_path, fires=False, every=15)


def test_the_scheduled_slo_pages_opens_an_incident_and_resolves_by_itself(
    served: Served,
) -> None:
    from datetime import UTC, datetime

    from ghaf.incidents.records import list_incidents
    from ghaf.platform import Platform
    from ghaf.settings import load_settings
    from ghaf.slo.schedule import evaluate_scheduled, list_slo_scrapes
    from ghaf.slo.store import define_slo
    from tests.unit.server.cli_runner import ghaf

    slo = SLO("fraud-scheduled", "fraud", "availability", 0.999)
    with Platform(load_settings(home=served.home)) as platform:
        owner = platform.admin()
        define_slo(platform, owner, slo)
        made = ghaf("--home", str(served.home), "slo", "schedule", slo.name, "--metrics",
                    served.url, "--every", "1m", "-o", "json")  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["targets"] == [served.url]
        bad = ghaf("--home", str(served.home), "slo", "schedule", slo.name,
                   "--metrics", "http://user:pw@127.0.0.1:1")  # fmt: skip
        assert bad.returncode != 0 and "field 'targets'" in bad.stderr, bad.stderr

        rng = np.random.default_rng(11)
        minutes, per_minute, onset, end = 60, 5, 20, 45  # 25 minutes at 20% in an hour
        p = np.where((np.arange(minutes) >= onset) & (np.arange(minutes) < end), 0.2, 0.0)
        bad_counts = rng.binomial(per_minute, p)
        passes = []
        for minute in range(-1, minutes):  # minute -1: the baseline read
            if minute >= 0:
                for _ in range(per_minute - int(bad_counts[minute])):
                    assert served.infer(GOOD) == 200
                for _ in range(int(bad_counts[minute])):
                    assert served.infer(PLANTED) == 500
            [scrape] = list_slo_scrapes(platform)
            now = datetime.fromtimestamp(START + (minute + 1) * STEP, UTC)
            passes.append(evaluate_scheduled(platform, owner, scrape, now))
        assert not any(p.errors for p in passes)

        # What the loop kept is every request sent, and its pages are the engine's.
        series = from_kept(platform, slo.name)
        np.testing.assert_array_equal(series.total, np.full(minutes, per_minute))
        np.testing.assert_array_equal(series.bad, bad_counts)
        expected = first_firing(slo, series)["1h"]
        paged = [p.at for p in passes if "1h" in p.firing]
        assert expected is not None and paged and paged[0] == expected
        assert START + onset * STEP < paged[0] <= START + end * STEP
        [incident] = [i for i in list_incidents(platform) if i.deployment == "fraud"]
        resolved = [p.at for p in passes if "1h" in p.resolved]
        assert resolved and resolved[0] > START + end * STEP, "the page resolves after the burst"
        assert not passes[-1].firing
        shown = ghaf("--home", str(served.home), "slo", "schedules", "-o", "json")
        [schedule] = json.loads(shown.stdout)["schedules"]
        assert schedule["firing"] == [] and schedule["last_error"] == ""
        assert incident.number in {n for p in passes for n in p.opened}
        assert incident.alert_count >= len(paged)  # every paging pass counted on it


def from_kept(platform: object, name: str) -> EventSeries:
    """The series the loop evaluates, rebuilt from the samples it kept in the home."""
    from ghaf.slo.schedule import _samples
    from ghaf.slo.sources import from_target_samples

    return from_target_samples(_samples(platform, name, 0.0), step=STEP)  # type: ignore[arg-type]
