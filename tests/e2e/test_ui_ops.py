"""The Deployments, Monitoring and Incidents pages of the web UI in Debian's Chromium
(issue 19 items 4 and 5), signed in through the real ``oidc-provider``.

The home holds deployment ``fraud`` (``fraud:1``, the champion) with a canary ramping
``fraud:2`` (first step: 10 % of the traffic) and deployment ``fraud-ab`` with a running
A/B experiment. The server's prediction log holds 2,000 answers the monitor judged over
three windows (the second and third with feature ``amount`` shifted: drift, an alert and
an incident opened by the monitoring loop) and a burst of 600 answers five minutes ago
with known latencies; an availability SLO scheduled on ``fraud`` kept three samples of
its server's counters (rendered by the serving metrics' own exposition) with 5 % then 2 %
errors. Sam (SRE, auditor) reads the split, the live figures (exactly what was logged),
the canary's step and the experiment; the drift over time per feature, the latest drift
report and its data quality; then acknowledges and resolves the incident with the
buttons, and sees each on its timeline and in the audit log. Vic (viewer) is offered no
button and a forced POST is refused; Olga, with a role only in another project, sees
none of it. Each page: no console error, no serious or
critical axe-core finding, a screenshot in docs/ui/.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from playwright.sync_api import expect

from ghaf.data import write_dataset
from ghaf.experiments.canary import start_canary
from ghaf.experiments.outcomes import import_outcomes
from ghaf.experiments.service import create_experiment, start_experiment
from ghaf.incidents.records import list_incidents
from ghaf.models.base import schema_to_json
from ghaf.monitoring.monitors import run_due_monitors
from ghaf.monitoring.schedule import default_log_dir, schedule_monitor
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model
from ghaf.serving.deployments import create_deployment, update_deployment
from ghaf.serving.metrics import Metrics
from ghaf.serving.predlog import ParquetSink, PredictionLogger
from ghaf.serving.traffic import Assignment
from ghaf.slo.base import SLO
from ghaf.slo.schedule import evaluate_scheduled, list_slo_scrapes, schedule_slo
from ghaf.slo.store import define_slo
from tests.e2e.test_ui import UI, served_ui
from tests.e2e.test_ui_data import _click_node
from tests.unit.monitoring.monitor_home import FEATURES, Seeded, features, seed_home
from tests.unit.serving.server_processes import second_person

pytestmark = pytest.mark.slow

ACCOUNTS = {"sam": ["ops-sre", "ops-audit"], "vic": ["ops-viewers"], "olga": ["sandbox-team"]}
ROLE_MAPPING = {
    "ops-sre": ["default:sre"],
    "ops-audit": ["*:auditor"],
    "ops-viewers": ["default:viewer"],
    "sandbox-team": ["sandbox:data_scientist"],
}
N = 1000
BURST = 600


def _log(platform: Platform, seeded: Seeded, x: np.ndarray, start: float, tag: str,
         latency: np.ndarray) -> None:  # fmt: skip
    """Log one answer of ``fraud:1`` per row of ``x``, 0.05 s apart from ``start``."""
    logger = PredictionLogger([ParquetSink(default_log_dir(platform))], flush_every=60)
    scores = seeded.model.predict_proba(x)
    for i in range(len(x)):
        logger.log({
            "request_id": f"{tag}-{i}", "ts": (start + i * 0.05) * 1000.0, "model": "fraud",
            "version": "1", "variant": "primary", "shadow": False,
            "latency_ms": float(latency[i]), "features": x[i : i + 1],
            "outputs": {"probabilities": scores[i : i + 1]}, "columns": FEATURES,
        })  # fmt: skip
    logger.close()


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _seed(platform: Platform, work: Path) -> dict[str, Any]:
    owner = platform.admin()
    seeded = seed_home(platform, work, rows=1500)
    t = time.time()
    flat = np.full(N, 2.0)
    _log(platform, seeded, features(10, N), t - 1499, "base", flat)
    _log(platform, seeded, features(11, N, shift={"amount": 2.0}), t - 1150, "shift", flat)
    burst_start = math.floor((t - 300) / 60) * 60 + 5.0  # 30 s inside one minute
    burst_ms = np.arange(1, BURST + 1, dtype=np.float64) / 6.0  # 1/6 .. 100 ms
    _log(platform, seeded, features(12, BURST), burst_start, "burst", burst_ms)
    schedule_monitor(platform, owner, "fraud", every="5m", window="10m", start_at=_at(t - 1200))
    for now in (t - 1190, t - 700, t - 100):  # three windows: clean, then the shift twice
        run_due_monitors(platform, owner, now=_at(now))
    # The availability SLO's samples of the server's counters: 5 %, then 2 % errors.
    define_slo(platform, owner, SLO(name="fraud-availability", deployment="fraud",
                                    sli="availability", objective=0.9))  # fmt: skip
    schedule_slo(platform, owner, "fraud-availability", ["http://127.0.0.1:9"], every=60)
    [scrape] = list_slo_scrapes(platform)
    counters = Metrics()
    for at, (ok, failed) in ((t - 900, (10, 0)), (t - 840, (95, 5)), (t - 780, (196, 4))):
        for code, count in ((200, ok), (500, failed)):
            for _ in range(count):
                counters.observe_request("fraud", "1", code, 0.002)
        evaluate_scheduled(platform, owner, scrape, _at(at), lambda _: counters.render())
    # The canary ramps fraud:2 on fraud; an A/B experiment runs on fraud-ab.
    signature = {
        "inputs": schema_to_json(pa.schema([(n, pa.float32()) for n in FEATURES])),
        "outputs": schema_to_json(pa.schema([("output", pa.float64())])),
    }
    v2 = register_model(platform, owner, "fraud", work / "saved", signature=signature)
    approve_model_version(platform, second_person(platform), v2.ref)
    update_deployment(platform, owner, "fraud", models={"fraud:1": 1.0, "fraud:2": 0.0})
    start_canary(platform, owner, "fraud-v2", "fraud", "fraud:2",
                 {"steps": [10, 50, 100], "max_error_rate": None}, champion="fraud:1")  # fmt: skip
    create_deployment(platform, owner, "fraud-ab", {"fraud:1": 1.0, "fraud:2": 1.0})
    create_experiment(platform, owner, "ab-fraud", "fraud-ab", {"fraud:1": 1.0, "fraud:2": 1.0})
    salt = start_experiment(platform, owner, "ab-fraud").salt
    # Two hours ago (outside the live charts' hour) 400 units were served; their labels
    # came in later: the treatment converts more.
    assignment = Assignment("ab-fraud", salt, {"1": 1, "2": 1})
    logger = PredictionLogger([ParquetSink(default_log_dir(platform))], flush_every=60)
    units, converted = [f"u{i}" for i in range(400)], []
    rng = np.random.default_rng(7)
    for i, unit in enumerate(units):
        variant, version = assignment.assign(unit)
        logger.log({
            "request_id": f"ab-{i}", "ts": (t - 7200 + i * 0.01) * 1000.0, "model": "fraud",
            "version": version, "variant": variant, "latency_ms": 2.0, "shadow": False,
            "features": np.ones((1, len(FEATURES)), np.float32),
            "outputs": {"probabilities": np.array([[0.5, 0.5]])}, "unit": unit,
            "experiment": "ab-fraud", "columns": FEATURES,
        })  # fmt: skip
        converted.append(int(rng.random() < (0.6 if version == "2" else 0.2)))
    logger.close()
    outcomes = pa.table({"unit": units, "outcome": converted})
    labels = write_dataset(platform, owner, "ab-labels", outcomes, source="test")
    import_outcomes(platform, owner, "fraud", labels.ref)
    [incident] = [i for i in list_incidents(platform) if i.title.startswith("drift on fraud")]
    return {"incident": incident.number, "burst_ms": burst_ms, "burst_start": burst_start}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UI, dict[str, Any]]]:
    with served_ui(tmp_path_factory.mktemp("ui-ops"), _seed, ACCOUNTS, ROLE_MAPPING) as pair:
        yield pair


def _csrf(page: Any) -> str:
    return str(json.loads(page.locator("body").get_attribute("hx-headers") or "{}")["X-CSRF-Token"])


def test_sam_reads_deployments_and_monitoring_then_acks_and_resolves_the_incident(
    seeded: tuple[UI, dict[str, Any]],
) -> None:
    ui, facts = seeded
    page = ui.sign_in("sam")
    page.get_by_role("link", name="Deployments", exact=True).click()
    page.wait_for_url(f"{ui.base}/ui/deployments")
    rows = page.locator("#deployments tbody tr")
    assert rows.evaluate_all("r => r.map(x => x.dataset.deployment)") == ["fraud", "fraud-ab"]
    assert "canary fraud-v2 (running, 10%)" in rows.first.inner_text()
    assert "experiment ab-fraud (running)" in rows.nth(1).inner_text()
    ui.check(page, "deployments")

    page.get_by_role("link", name="fraud", exact=True).click()
    page.wait_for_url(f"{ui.base}/ui/deployments/fraud")
    assert page.get_by_test_id("share-fraud:1").inner_text() == "90.0%"
    assert page.get_by_test_id("share-fraud:2").inner_text() == "10.0%"
    assert page.get_by_test_id("canary-status").inner_text() == "running"
    assert page.get_by_test_id("canary-step").inner_text() == "1 of 3: 10% of traffic"
    # The live figures are what the log holds: every answer counted in its minute.
    live = json.loads(page.locator("#live").get_attribute("data-live") or "{}")
    assert round(sum(live["rps"]) * 60) == 2 * N + BURST
    minute = live["x"].index(math.floor(facts["burst_start"] / 60) * 60)
    assert live["rps"][minute] == pytest.approx(BURST / 60)
    assert live["p50"][minute] == pytest.approx(float(np.quantile(facts["burst_ms"], 0.5)))
    assert live["p99"][minute] == pytest.approx(float(np.quantile(facts["burst_ms"], 0.99)))
    assert sorted(r for r in live["error_rate"] if r is not None) == pytest.approx([0.02, 0.05])
    assert live["slos"] == ["fraud-availability"]
    # The headline: the last 30 full minutes (every answer and every counted request).
    every_ms = np.concatenate([np.full(2 * N, 2.0), facts["burst_ms"]])
    assert page.get_by_test_id("live-rps").inner_text() == f"{(2 * N + BURST) / 1800:.2f}"
    assert page.get_by_test_id("live-p99").inner_text() == f"{np.quantile(every_ms, 0.99):.1f} ms"
    assert page.get_by_test_id("live-errors").inner_text() == "3.00%"  # 9 of 300
    expect(page.locator("#live-charts[data-drawn='60']")).to_have_count(1)
    assert page.locator("#live-charts canvas").count() == 3
    ui.check(page, "deployment")
    # htmx polls for fresh figures: the "as of" moves on without a reload.
    first = page.get_by_test_id("live-at").inner_text()
    expect(page.get_by_test_id("live-at")).not_to_have_text(first, timeout=20_000)
    assert page.locator("#live-charts canvas").count() == 3  # redrawn in place

    # Its lineage graph: the deployment's node opens this page again.
    page.get_by_role("link", name="graph of deployment:fraud").click()
    page.locator("#lineage-graph[data-ready=true] canvas").first.wait_for()
    _click_node(page, "deployment:fraud")
    page.wait_for_url(f"{ui.base}/ui/deployments/fraud")

    page.goto(f"{ui.base}/ui/deployments/fraud-ab")
    assert page.get_by_test_id("experiment-status").inner_text() == "running"
    # The verdict is the API's interim analysis of the same log and labels.
    api = page.request.get(f"{ui.base}/api/v1/traffic/experiments/ab-fraud").json()
    verdict = api["analysis"]["decision"]["verdict"]
    shown = page.get_by_test_id("experiment-verdict").inner_text()
    assert shown == f"{verdict.replace('_', ' ')} (interim)", (shown, api["analysis"]["decision"])
    assert "No canary on this deployment." in page.locator("#canary-panel").inner_text()

    page.get_by_role("link", name="Monitoring", exact=True).click()
    page.wait_for_url(f"{ui.base}/ui/monitoring")
    expect(page.locator(f"#drift-chart[data-drawn='{len(FEATURES)}']")).to_have_count(1)
    series = json.loads(page.locator("#drift-chart").get_attribute("data-series") or "{}")
    assert len(series["x"]) == 3 and sorted(series["features"]) == sorted(FEATURES)
    amount = series["psi"]["amount"]
    assert amount[0] < 0.1 < amount[1], amount  # clean, then shifted
    assert series["alarms"] == {"amount": 2, "age": 0, "tenure": 0, "balance": 0}
    assert page.get_by_test_id("report-status").inner_text() == "breached"
    assert page.get_by_test_id("drifted").inner_text() == "amount"
    drifted = page.locator("#drift-columns tr.check-fail").evaluate_all(
        "r => r.map(x => x.dataset.column)"
    )
    assert drifted == ["amount"]
    assert page.get_by_test_id("quality-summary").inner_text().startswith("Passed")
    assert page.locator("#quality-columns tbody tr").count() == len(FEATURES)
    ui.check(page, "monitoring")

    number = facts["incident"]
    page.get_by_role("link", name="Incidents", exact=True).click()
    page.wait_for_url(f"{ui.base}/ui/incidents")
    assert page.get_by_test_id(f"state-{number}").inner_text() == "New"
    ui.check(page, "incidents")
    page.get_by_role("link", name=number, exact=True).click()
    page.wait_for_url(f"{ui.base}/ui/incidents/{number}")
    with page.expect_navigation():  # the button posts to the API, then the page reloads
        page.get_by_test_id("ack").click()
    assert page.get_by_test_id("incident-state").inner_text() == "In Progress"
    assert page.get_by_test_id("ack").count() == 0
    ack = page.locator("#timeline li[data-kind='ack']")
    assert "by sam" in ack.inner_text() and "to In Progress" in ack.inner_text()
    note = "amount shift traced to a currency change upstream; reference refreshed"
    page.get_by_label("Resolution note").fill(note)
    with page.expect_navigation():
        page.get_by_test_id("resolve").click()
    assert page.get_by_test_id("incident-state").inner_text() == "Resolved"
    assert note in page.locator("#timeline li[data-kind='resolve']").inner_text()
    assert page.get_by_test_id("resolve").count() == 0
    ui.check(page, "incident")
    page.goto(f"{ui.base}/ui/audit?action=incident.ack")
    rows = page.locator("#audit-records tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").nth(2).inner_text() == "sam"
    assert rows.first.locator("td").nth(6).inner_text() == "allowed"
    assert ui.errors == []
    page.context.close()


def test_a_viewer_is_offered_no_button_and_a_forced_ack_is_refused(
    seeded: tuple[UI, dict[str, Any]],
) -> None:
    ui, facts = seeded
    page = ui.sign_in("vic")
    page.goto(f"{ui.base}/ui/incidents/{facts['incident']}")
    assert page.get_by_test_id("incident-state").count() == 1
    assert page.locator(".actions button, form.resolve").count() == 0
    url = f"{ui.base}/api/v1/incidents/{facts['incident']}/reopen"
    forced = page.request.post(url, data={"note": "forced"}, headers={"X-CSRF-Token": _csrf(page)})
    assert forced.status == 403, forced.text()
    reply = page.goto(f"{ui.base}/ui/deployments/nonesuch")
    assert reply is not None and reply.status == 404
    assert page.get_by_role("alert").inner_text() == "deployment 'nonesuch' does not exist"
    page.context.close()
    # Olga has a role only in project sandbox: nothing of project default shows, and the
    # deployment reads as missing, word for word as the API says it.
    page = ui.sign_in("olga")
    page.goto(f"{ui.base}/ui/deployments")
    assert page.locator("#deployments tbody").inner_text().strip() == "No deployments you may read."
    reply = page.goto(f"{ui.base}/ui/deployments/fraud")
    assert reply is not None and reply.status == 404
    api = page.request.get(f"{ui.base}/api/v1/deployments/fraud")
    assert api.status == 404 and page.get_by_role("alert").inner_text() == api.json()["title"]
    page.goto(f"{ui.base}/ui/monitoring")
    assert page.locator("#monitors tbody").inner_text().strip() == "No monitors you may read."
    page.goto(f"{ui.base}/ui/incidents")
    assert page.locator("#incidents tbody").inner_text().strip() == "No incidents you may read."
    refused = [
        f"{ui.base}/{p}: Failed to load resource"
        for p in ("ui/deployments/nonesuch", "ui/deployments/fraud", "api/v1/deployments/fraud")
    ]
    others = [e for e in ui.errors if not e.startswith(tuple(refused))]
    ui.errors.clear()
    assert others == []
    page.context.close()
