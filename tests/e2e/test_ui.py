"""The web UI in Debian's Chromium, as people use it: one ``ghaf server``, the real
``oidc-provider`` signing people in (authorization code + PKCE), one browser.

Alice (a data scientist) signs in through the provider, filters her runs in the search
language, opens one and sees its metric chart; she registered ``churn`` version 1 and is
offered no Approve button (four eyes). Remy (release manager and approver) approves it
with the button, and the approval appears on the Audit page with the chain verified. A
viewer is offered neither button and a forced POST is refused; a POST by cookie without
the CSRF header is refused. The owner opens the UI with a one-time ``ghaf ui
login-link``, once. Each page: no console error, no serious or critical axe-core finding,
and a screenshot in docs/ui/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from platform import python_version
from typing import Any, TypeVar

import numpy as np
import pytest
from playwright.sync_api import expect

from ghaf.home import init_home
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import register_model
from ghaf.settings import load_settings
from ghaf.testing.people import person
from ghaf.tracking.env import capture_environment
from ghaf.tracking.service import create_run, end_run, log_batch, log_inputs
from tests.e2e.test_drift_report_browser import CHROMIUM, _browser_or_skip
from tests.integration.oidc_support import AUDIENCE, free_port, run_provider
from tests.integration.served_home import toml_section
from tests.unit.serving.server_processes import ServerProcess, ghaf

pytestmark = pytest.mark.slow
T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "ui"
AXE = Path(__file__).parent / "axe" / "axe.min.js"
CLIENT = "ghaf-ui"
ACCOUNTS = {
    "alice": ["ml-scientists"],
    "remy": ["ml-release", "ml-audit"],
    "vic": ["ml-viewers"],
    "rita": ["ml-release"],
}
ROLE_MAPPING = {
    "ml-scientists": ["default:data_scientist"],
    "ml-release": ["default:release_manager", "default:model_approver"],
    "ml-audit": ["*:auditor"],
    "ml-viewers": ["default:viewer"],
}
SERIOUS = """async () => {
  const found = await axe.run(document, {resultTypes: ['violations']});
  return found.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""


@dataclass
class UI:
    base: str
    home: Path
    platform: Platform
    browser: Any
    run_ids: list[str]
    errors: list[str] = field(default_factory=list)

    def sign_in(self, login: str) -> Any:
        """A fresh browser context signed in as ``login`` through the provider's form."""
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        self.watch(page)
        page.goto(self.base + "/ui/runs")
        page.get_by_role("link", name="Sign in with your organisation").click()
        page.fill("input[name=login]", login)
        page.fill("input[name=password]", "any password")
        page.click("button[type=submit]")
        page.wait_for_url(self.base + "/ui/runs**")
        assert page.get_by_test_id("principal").inner_text() == login
        return page

    def watch(self, page: Any) -> None:
        """Collect console errors and uncaught exceptions of Ghaf's own pages."""

        def console(message: Any) -> None:
            if message.type != "error" or not page.url.startswith(self.base):
                return
            if message.text.startswith("Failed to load resource") and (
                message.location.get("url") == page.url
            ):
                return  # the page's own HTTP status, which each test asserts itself
            self.errors.append(f"{page.url}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))

    def check(self, page: Any, shot: str) -> None:
        """No serious/critical axe finding, no console error so far; save a screenshot."""
        page.evaluate(AXE.read_text())
        assert page.evaluate(SERIOUS) == [], page.url
        assert self.errors == []
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)


def _seed(platform: Platform, work: Path) -> list[str]:
    """Alice's three runs (loss curves, auc, C) and her model ``churn`` version 1."""
    from sklearn.linear_model import LogisticRegression

    alice = person(platform, "alice", ["data_scientist"])
    environment = capture_environment()
    run_ids = []
    for i, c in enumerate((0.1, 1.0, 10.0)):
        run_id = create_run(
            platform, alice, "churn", name=f"churn-C{c}", tags={"team": "risk"}, env=environment
        )
        steps = np.arange(200)
        loss = (1.0 + i) / (steps + 1.0)
        now = time.time()
        points = [("loss", float(v), int(s), now) for s, v in zip(steps, loss, strict=True)]
        points.append(("auc", 0.7 + 0.1 * i, 0, now))
        log_batch(platform, alice, run_id, metrics=points, params={"C": str(c)})
        end_run(platform, alice, run_id, "finished")
        run_ids.append(run_id)
    x = np.random.default_rng(3).normal(size=(40, 3)).astype(np.float32)
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), work / "saved")
    register_model(platform, alice, "churn", work / "saved", run_id=run_ids[-1], example=x[:2])
    return run_ids


@contextmanager
def served_ui(
    work: Path,
    seed: Callable[[Platform, Path], T],
    accounts: dict[str, list[str]] | None = None,
    role_mapping: dict[str, list[str]] | None = None,
) -> Iterator[tuple[UI, T]]:
    """One `ghaf server` on a home signed into by the real oidc-provider (interactive
    authorization code + PKCE for ``accounts``, roles from ``role_mapping``), seeded by
    ``seed`` before the server starts, and one Chromium: what each UI test module needs."""
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    port = free_port()
    interactive = {
        "client_id": CLIENT,
        "redirect_uris": [f"http://127.0.0.1:{port}/ui/login/callback"],
        "accounts": ACCOUNTS if accounts is None else accounts,
    }
    mapping = ROLE_MAPPING if role_mapping is None else role_mapping
    with run_provider(work / "provider", {}, interactive=interactive) as provider:
        identity = {"issuer": provider.issuer, "audience": AUDIENCE, "client_id": CLIENT}
        home = work / "home"
        home.mkdir(mode=0o700)
        (home / "ghaf.toml").write_text(
            toml_section("identity", identity) + toml_section("identity.role_mapping", mapping)
        )
        platform = init_home(load_settings(home=home))
        seeded = seed(platform, work)
        server = ServerProcess(home, ("server",), "/health", work / "server.log", port=port)
        server.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                try:
                    run_ids = seeded if isinstance(seeded, list) else []
                    yield UI(server.url, home, platform, browser, run_ids), seeded
                finally:
                    browser.close()
        finally:
            log = server.stop()
            platform.close()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    with served_ui(tmp_path_factory.mktemp("ui"), _seed) as (served, _):
        yield served


def test_alice_signs_in_filters_her_runs_and_sees_a_run_s_chart(ui: UI) -> None:
    page = ui.sign_in("alice")
    assert page.get_by_test_id("run-count").inner_text() == "3 runs on this page"
    ui.check(page, "runs")
    page.fill("#q", "metrics.auc > 0.75 and params.C != '10.0'")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)  # no eval: the CSP forbids it
    assert "q=metrics.auc" in page.url  # the filter is in the bookmarkable URL
    assert page.locator("#runs-table tbody tr td").nth(1).inner_text() == "churn-C1.0"
    page.get_by_role("link", name="churn-C1.0").click()
    page.wait_for_url(f"{ui.base}/ui/runs/{ui.run_ids[1]}")
    chart = page.locator('.chart[data-metric="loss"] canvas')
    chart.wait_for()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 100
    assert page.locator("table.kv td", has_text="C").count() >= 1
    ui.check(page, "run")
    page.goto(f"{ui.base}/ui/models/churn")
    assert page.locator("[data-version='1']").count() == 1
    assert page.get_by_test_id("approve-1").count() == 0  # her own version: four eyes
    page.context.close()


def test_a_release_manager_approves_and_the_audit_page_shows_it(ui: UI) -> None:
    page = ui.sign_in("remy")
    page.get_by_role("link", name="Models").click()
    ui.check(page, "models")
    page.get_by_role("link", name="churn").click()
    assert page.get_by_test_id("approvals-1").inner_text().strip() == "none"
    assert page.get_by_test_id("promote-1-staging").count() == 1  # the lifecycle's next steps
    assert page.get_by_test_id("promote-1-production").count() == 0
    with page.expect_navigation():  # the button posts to the API, then the page reloads
        page.get_by_test_id("approve-1").click()
    assert page.get_by_test_id("approvals-1").inner_text().startswith("remy")
    assert page.get_by_test_id("approve-1").count() == 0
    ui.check(page, "model")
    # The audit page's filters, as a person uses them: actor, action, outcome and dates.
    page.get_by_role("link", name="Audit").click()
    page.fill("#f-actor", "remy")
    page.fill("#f-action", "model.*")
    page.select_option("#f-outcome", "allowed")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    page.fill("#f-since", today)
    page.fill("#f-until", today)
    with page.expect_navigation():
        page.get_by_role("button", name="Apply").click()
    assert "actor=remy" in page.url and "outcome=allowed" in page.url  # bookmarkable
    rows = page.locator("#audit-records tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").nth(2).inner_text() == "remy"
    assert rows.first.locator("td").nth(3).inner_text() == "model.approve"
    assert rows.first.locator("td").nth(6).inner_text() == "allowed"
    rows.first.get_by_text("details").click()  # the record's details, with its hash
    assert "hash: " in rows.first.locator("pre").inner_text()
    page.select_option("#f-outcome", "denied")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply").click()
    assert rows.first.inner_text() == "No records match."
    page.goto(f"{ui.base}/ui/audit?action=model.approve")
    assert rows.count() == 1
    status = page.get_by_test_id("chain-status")
    status.wait_for()
    assert status.inner_text().startswith(("Chain valid", "Chain pending"))
    ui.check(page, "audit")
    # A write by cookie without the page's CSRF header is refused; with it, allowed.
    csrf = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")["X-CSRF-Token"]
    url = f"{ui.base}/api/v1/models/churn:1/stage"
    refused = page.request.post(url, data={"stage": "staging"})
    assert refused.status == 403, refused.text()
    assert "x-csrf-token" in refused.json()["title"]
    moved = page.request.post(url, data={"stage": "staging"}, headers={"X-CSRF-Token": csrf})
    assert moved.status == 200, moved.text()
    assert moved.json()["stage"] == "staging"
    page.context.close()


def test_a_viewer_is_offered_no_button_and_a_forced_promotion_is_refused(ui: UI) -> None:
    page = ui.sign_in("vic")
    page.goto(f"{ui.base}/ui/models/churn")
    assert page.locator(".actions button").count() == 0
    csrf = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")["X-CSRF-Token"]
    forced = page.request.post(
        f"{ui.base}/api/v1/models/churn:1/stage",
        data={"stage": "production"},
        headers={"X-CSRF-Token": csrf},
    )
    assert forced.status == 403, forced.text()
    page.goto(f"{ui.base}/ui/audit")
    assert "You audit no project" in page.content()
    assert ui.errors == []
    page.context.close()


def test_the_owner_opens_the_ui_with_a_one_time_link(ui: UI) -> None:
    made = ghaf(ui.home, "ui", "login-link", "--url", ui.base, "-o", "json")
    assert made.returncode == 0, made.stderr
    link = json.loads(made.stdout)["url"]
    context = ui.browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    ui.watch(page)
    page.goto(ui.base + "/ui/login")
    ui.check(page, "login")
    page.goto(link)
    assert page.url == ui.base + "/ui/runs"
    assert page.get_by_test_id("principal").inner_text() == ui.platform.home_owner()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(ui.base + "/ui/login")
    again = context.new_page()
    reply = again.goto(link)
    assert reply is not None and reply.status == 403
    assert "used already or has expired" in again.content()
    context.close()


def test_the_cost_page_shows_the_api_s_report(ui: UI) -> None:
    """Issue 23's cost report in the UI: the page's figures are the document
    ``GET /api/v1/cost`` answers the same person (a batch job and a serving segment
    recorded in alice's project); a bad window is one line naming the fix."""
    from datetime import timedelta

    from ghaf.cost import Usage, record_usage
    from ghaf.metadata.base import utcnow

    now = utcnow()
    owner = ui.platform.admin()
    record_usage(ui.platform, owner, Usage("batch", "ui-batch-1", now - timedelta(minutes=5),
                 now, 300.0, cpu_s=240.0, cpu_request=2.0, model="churn"))  # fmt: skip
    record_usage(ui.platform, owner, Usage("deployment", "ui-serve-1", now - timedelta(hours=1),
                 now, 3600.0, cpu_s=900.0, cpu_request=1.0, replicas=1, predictions=12_000,
                 deployment="churn-live", model="churn"))  # fmt: skip
    page = ui.sign_in("alice")
    page.goto(f"{ui.base}/ui/cost?by=deployment&since=1d")
    api = page.request.get(f"{ui.base}/api/v1/cost?by=deployment&since=1d").json()
    shown = page.locator("#cost-table tbody tr")
    assert shown.count() == len(api["groups"]) == 2
    for row, group in zip(shown.all(), api["groups"], strict=True):
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == (group["key"] or "-")
        assert float(cells[7]) == pytest.approx(group["cost"], abs=1e-6)  # shown to 6 places
    total = page.locator("#cost-table tfoot td.cost").inner_text()
    assert float(total) == pytest.approx(api["total"]["cost"], abs=1e-6)
    live = next(g for g in api["groups"] if g["key"] == "churn-live")
    assert live["cost_per_1000_predictions"] == pytest.approx(live["cost"] / 12.0)
    ui.check(page, "cost")
    page.goto(f"{ui.base}/ui/cost?since=fortnight")
    assert "is not" in page.get_by_role("alert").inner_text()
    page.context.close()


def test_alice_chooses_columns_and_compares_three_runs(ui: UI) -> None:
    """The column chooser keeps its choice in the URL; three runs ticked in the table are
    compared: one uPlot line per run on each metric's chart, one line per run in the
    parallel coordinates, and C (the only param that differs) marked in the params diff."""
    alice = person(ui.platform, "alice", ["data_scientist"])
    inputs = ["dataset:churn_training:2", "feature_view:customer_stats:1"]
    log_inputs(ui.platform, alice, ui.run_ids[0], inputs)
    page = ui.sign_in("alice")

    def header(name: str) -> Any:
        return page.get_by_role("columnheader", name=name, exact=True)

    expect(header("loss")).to_have_count(1)
    page.get_by_text("Columns (").click()
    page.get_by_role("checkbox", name="loss").uncheck()
    page.get_by_role("button", name="Apply").click()
    expect(header("loss")).to_have_count(0)
    assert "metric=auc" in page.url and "loss" not in page.url
    page.goto(page.url)  # bookmarked: the same columns
    expect(header("auc")).to_have_count(1)
    expect(header("loss")).to_have_count(0)
    expect(header("C")).to_have_count(1)
    count = page.locator("#compare-count")
    page.get_by_role("button", name="Select all on this page").click()
    expect(count).to_have_text("3 selected")
    page.get_by_role("button", name="Clear selection").click()
    expect(count).to_have_text("0 selected")
    expect(page.get_by_role("button", name="Compare selected")).to_be_disabled()
    for name in ("churn-C0.1", "churn-C1.0", "churn-C10.0"):
        page.get_by_role("checkbox", name=f"Select {name} to compare").check()
    expect(count).to_have_text("3 selected")
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(f"{ui.base}/ui/compare?runs=**")
    assert set(page.url.split("runs=")[1].split(",")) == set(ui.run_ids)
    expect(page.locator("#main[data-drawn=true]")).to_have_count(1)
    loss = page.locator('#compare-charts .chart[data-metric="loss"]')
    expect(loss).to_have_attribute("data-series", "3")
    assert loss.locator(".u-legend .u-series").count() == 4  # step + one per run
    assert loss.locator("canvas").bounding_box()["width"] > 200  # type: ignore[index]
    expect(page.locator("#parallel")).to_have_attribute("data-lines", "3")
    assert page.locator("#parallel canvas").count() >= 1
    c_row = page.locator('#params-diff tr[data-param="C"]')
    assert c_row.get_attribute("class") == "differs"
    assert c_row.locator("td").all_inner_texts() == ["0.1", "1.0", "10.0"]
    ui.check(page, "compare")
    # A compared run's page: its inputs link to their data pages, its environment shows.
    page.get_by_role("link", name=f"churn-C0.1 ({ui.run_ids[0][:8]})").click()
    page.wait_for_url(f"{ui.base}/ui/runs/{ui.run_ids[0]}")
    dataset = page.locator('#run-inputs tr[data-node="dataset:churn_training:2"] a').first
    assert dataset.get_attribute("href") == "/ui/data/churn_training?version=2"
    view = page.locator('#run-inputs tr[data-node="feature_view:customer_stats:1"] a').first
    assert view.get_attribute("href") == "/ui/features#view-customer_stats"
    facts = page.locator("#run-environment").inner_text()
    assert f"Python\n{python_version()}" in facts
    assert "installed packages" in page.get_by_text("installed packages").inner_text()
    # More than 100 runs: refused with one line naming the limit.
    many = ",".join(f"{i:032x}" for i in range(101))
    reply = page.goto(f"{ui.base}/ui/compare?runs={many}")
    assert reply is not None and reply.status == 400
    assert "at most 100 can be compared" in page.content()
    page.context.close()


def test_break_glass_asks_a_reason_a_second_person_confirms_and_the_audit_shows_it(
    ui: UI, tmp_path: Path
) -> None:
    """Model ``fraud`` (alice's; a gate policy attached): its page shows each version's
    signature, evaluation and card. Remy approves version 1 and promotes it (the gate
    runs: its verdict shows); version 2 is unapproved, so its Promote to production
    goes through break-glass: a dialog that needs a reason. Remy is offered no Confirm
    of his own request; Rita confirms it; the audit page shows the reason."""
    from sklearn.linear_model import LogisticRegression

    from ghaf.registry.gate_policies import add_gate_policy, attach_gate_policy

    alice = person(ui.platform, "alice", ["data_scientist"])
    x = np.random.default_rng(5).normal(size=(40, 2)).astype(np.float32)
    save_model(LogisticRegression().fit(x, (x[:, 1] > 0).astype(int)), tmp_path / "fraud")
    for _ in range(2):
        register_model(ui.platform, alice, "fraud", tmp_path / "fraud", example=x[:2],
                       metrics={"auc": 0.81})  # fmt: skip
    owner = ui.platform.admin()
    add_gate_policy(ui.platform, owner, "metrics:\n  auc: {min: 0.75}\n", name="fraud-auc")
    attach_gate_policy(ui.platform, owner, "fraud-auc", model="fraud")

    page = ui.sign_in("remy")
    page.goto(f"{ui.base}/ui/models/fraud")
    inputs = page.get_by_test_id("signature-1").locator("tbody tr td").all_inner_texts()
    assert inputs[:2] == ["f0", "float"], inputs
    assert "auc" in page.get_by_test_id("evaluation-1").inner_text()
    assert "0.81" in page.get_by_test_id("evaluation-1").inner_text()
    card = page.get_by_test_id("card-1")
    assert card.locator("h3, h4").count() >= 1 and "fraud" in (card.text_content() or "")
    assert "approved (0 of 1" in page.get_by_test_id("release-1").inner_text()
    with page.expect_navigation():
        page.get_by_test_id("approve-1").click()
    for stage in ("staging", "production"):
        with page.expect_navigation():
            page.get_by_test_id(f"promote-1-{stage}").click()
    assert page.locator("[data-version='1'] .badge.stage-production").count() == 1
    gates = page.get_by_test_id("gates-1").inner_text()
    assert "fraud-auc:1" in gates and "passed" in gates, gates
    # Version 2 misses the policy: break-glass asks for a reason before it asks the API.
    page.get_by_test_id("break-glass-2-production").click()
    dialog = page.locator("dialog#glass-2-production")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Request break-glass").click()
    expect(dialog).to_be_visible()  # the reason is required: nothing was sent
    assert dialog.get_by_role("textbox").evaluate("e => e.validity.valueMissing")
    reason = "INC-77: fraud scores drifted since 09:10, shipping v2 now"
    dialog.get_by_label("Reason").fill(reason)
    ui.check(page, "model-break-glass")
    with page.expect_navigation():
        dialog.get_by_role("button", name="Request break-glass").click()
    requests = page.get_by_test_id("glass-requests-2")
    assert reason in requests.inner_text() and "pending" in requests.inner_text()
    assert requests.get_by_role("button", name="Confirm break-glass").count() == 0  # his own

    rita = ui.sign_in("rita")
    rita.goto(f"{ui.base}/ui/models/fraud")
    with rita.expect_navigation():
        rita.get_by_test_id("glass-requests-2").get_by_role("button").click()
    assert rita.locator("[data-version='2'] .badge.stage-production").count() == 1
    assert "confirmed by rita" in rita.get_by_test_id("glass-requests-2").inner_text()
    assert reason in rita.get_by_test_id("card-2").inner_text()  # on the model card too
    rita.context.close()

    page.goto(f"{ui.base}/ui/audit?action=model.break_glass")
    rows = page.locator("#audit-records tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td")
    assert cells.nth(2).inner_text() == "rita" and cells.nth(6).inner_text() == "allowed"
    cells.nth(7).get_by_text("details").click()
    assert reason in cells.nth(7).inner_text()
    page.context.close()
