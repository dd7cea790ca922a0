"""The Data, Features and Lineage pages of the web UI in Debian's Chromium (issue 19
item 3), signed in through the real ``oidc-provider``.

The home holds dataset ``transactions`` ingested twice from CSV under a contract (20 then
30 rows), a feature view ``customer_spend`` built from it and materialized, a training
set ``churn_training`` retrieved from the view, a run that trained on it, ``churn``
version 1 registered from the run, approved by a second person, deployed as
``churn-live`` and used to score a small dataset ``churn_inputs`` into ``churn_scores``
(as ``ghaf predict churn:1 dataset:churn_inputs dataset:churn_scores`` does), a second
view materialized three hours ago with a TTL of an hour (stale), and a run of project
``sandbox`` that read version 2 too. Alice (data scientist in the default project) opens
Data, the dataset, its versions and contract result, compares two versions, opens the
lineage graph (dataset -> feature view -> training set -> run -> model -> deployment,
and model -> predictions), sees exactly the nodes ``GET /api/v1/lineage`` shows her (not
the sandbox run), clicks the model's, the run's and the predictions' nodes on the canvas
and lands on their pages. Olga, who has a role only in ``sandbox``, sees no dataset, and
the dataset and its lineage read as missing. Each page: no console error, no serious or
critical axe-core finding, a screenshot in docs/ui/.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pytest

from ghaf.data import get_dataset, write_dataset
from ghaf.data.contracts import ColumnSpec, Contract, Range, RowCount
from ghaf.data.ingest import ingest
from ghaf.features import Entity, FeatureView, Field
from ghaf.features.materialize import materialize
from ghaf.features.registry import apply_definitions
from ghaf.features.retrieval import get_historical_features, save_training_set
from ghaf.metadata.base import utcnow
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model
from ghaf.serving.deployments import create_deployment
from ghaf.serving.models import resolve_model
from ghaf.serving.outputs import score_to_target
from ghaf.tracking.service import create_run, end_run, log_batch, log_inputs
from tests.e2e.test_ui import UI, served_ui
from tests.unit.serving.server_processes import second_person

pytestmark = pytest.mark.slow

ACCOUNTS = {"alice": ["ml-scientists"], "olga": ["sandbox-team"]}
ROLE_MAPPING = {
    "ml-scientists": ["default:data_scientist"],
    "sandbox-team": ["sandbox:data_scientist"],
}
CONTRACT = Contract(
    columns=(
        ColumnSpec("customer_id", "int64", nullable=False),
        ColumnSpec("event_ts", "timestamp"),
        ColumnSpec("amount", "float64"),
    ),
    checks=(Range(column="amount", min=0), RowCount(min=1)),
)


def _csv(path: Path, rows: int, shift: float) -> Path:
    lines = ["customer_id,event_ts,amount,label"]
    lines += [
        f"{i % 5 + 1},2026-01-{i % 28 + 1:02d}T00:00:00,{i * 3.5 + shift:.2f},{i % 2}"
        for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _seed(platform: Platform, work: Path) -> dict[str, str]:
    """The dataset's two versions, the feature view, the run, the model, the deployment,
    and the sandbox project's run; returns their lineage nodes."""
    from sklearn.linear_model import LogisticRegression

    owner = platform.admin()
    ingest(platform, owner, _csv(work / "a.csv", 20, 0.0), "transactions", contract=CONTRACT)
    v2 = ingest(platform, owner, _csv(work / "b.csv", 30, 10.0), "transactions", contract=CONTRACT)
    customer = Entity("customer", ("customer_id",))
    view = FeatureView(
        "customer_spend", (customer,), "dataset:transactions", (Field("amount"),),
        ttl=timedelta(days=30),
    )  # fmt: skip
    hourly = FeatureView(
        "customer_spend_hourly", (customer,), "dataset:transactions", (Field("amount"),),
        ttl=timedelta(hours=1),
    )  # fmt: skip
    apply_definitions(platform, owner, [customer, view, hourly])
    materialize(platform, owner, ["customer_spend"])
    materialize(platform, owner, ["customer_spend_hourly"], until=utcnow() - timedelta(hours=3))
    spine = pa.table({
        "customer_id": [1, 2, 3, 4],
        "event_ts": pa.array([datetime(2026, 2, 1)] * 4, pa.timestamp("us")),
        "label": [0, 1, 0, 1],
    })  # fmt: skip
    wanted = ["customer_spend:amount"]
    found = get_historical_features(platform, spine, wanted)
    training = save_training_set(platform, owner, "churn_training", found, wanted)
    run_id = create_run(platform, owner, "churn", name="train-churn")
    log_inputs(platform, owner, run_id, [training.node])
    log_batch(platform, owner, run_id, metrics=[("auc", 0.81, 0, time.time())], params={"C": "1"})
    end_run(platform, owner, run_id, "finished")
    x = np.random.default_rng(3).normal(size=(40, 3)).astype(np.float32)
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), work / "saved")
    model = register_model(platform, owner, "churn", work / "saved", run_id=run_id, example=x[:2])
    approve_model_version(platform, second_person(platform), model.ref)
    create_deployment(platform, owner, "churn-live", [model.ref])
    # Batch scoring, as ``ghaf predict churn:1 dataset:churn_inputs --output
    # dataset:churn_scores`` does it: the registry reference resolved and verified, the
    # scores written as a dataset version whose lineage is the model and the input.
    spec = resolve_model(platform, "churn:1", work / "scoring", serving=False)
    assert spec.signature is not None and len(spec.signature.columns) == 3
    features = {c: x[:6, i] for i, c in enumerate(spec.signature.columns)}
    inputs = write_dataset(platform, owner, "churn_inputs", pa.table(features), source="test")
    score_to_target(
        platform, owner, spec, "dataset:churn_inputs", "dataset:churn_scores", progress=False
    )
    scores = get_dataset(platform, "churn_scores")
    assert scores.num_rows == 6 and scores.inputs == (model.node, inputs.node)
    sandbox = platform.in_project("sandbox")
    other = create_run(sandbox, owner, "sandbox-exp", name="sandbox-reader")
    log_inputs(sandbox, owner, other, [v2.node])
    end_run(sandbox, owner, other, "finished")
    return {
        "dataset": v2.node,
        "view": "feature_view:customer_spend:1",
        "training": training.node,
        "run": f"run:{run_id}",
        "model": model.node,
        "deployment": "deployment:churn-live",
        "inputs": inputs.node,
        "predictions": scores.node,
        "sandbox_run": f"run:{other}",
    }


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UI, dict[str, str]]]:
    with served_ui(tmp_path_factory.mktemp("ui-data"), _seed, ACCOUNTS, ROLE_MAPPING) as pair:
        yield pair


def _click_node(page: object, node: str) -> None:
    """Click ``node`` where the graph drew it on the canvas, as a person would."""
    box = page.locator("#lineage-graph").bounding_box()  # type: ignore[attr-defined]
    assert box is not None
    at = page.evaluate(  # type: ignore[attr-defined]
        "id => window.ghafLineage.getElementById(id).renderedPosition()", node
    )
    assert 0 < at["x"] < box["width"] and 0 < at["y"] < box["height"], (at, box)
    page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])  # type: ignore[attr-defined]


def test_alice_browses_a_dataset_its_diff_and_its_lineage_graph(
    seeded: tuple[UI, dict[str, str]],
) -> None:
    ui, nodes = seeded
    page = ui.sign_in("alice")
    page.get_by_role("link", name="Data", exact=True).click()
    page.wait_for_url(f"{ui.base}/ui/data")
    listed = page.locator("#datasets tbody tr").evaluate_all("r => r.map(x => x.dataset.dataset)")
    assert listed == ["churn_inputs", "churn_scores", "churn_training", "transactions"]
    ui.check(page, "data")

    page.get_by_role("link", name="transactions", exact=True).click()
    page.wait_for_url(f"{ui.base}/ui/data/transactions")
    assert page.locator("#versions tbody tr").count() == 2
    assert page.get_by_test_id("rows-1").inner_text() == "20"
    assert page.get_by_test_id("rows-2").inner_text() == "30"
    assert page.get_by_test_id("contract-summary").inner_text().startswith("Passed: 3/3 checks")
    assert page.locator("#profile tbody tr").count() == 4  # customer_id, event_ts, amount, label
    assert page.get_by_test_id("diff-rows").inner_text() == "Rows: 20 → 30 (+10)"
    amount = page.locator("#diff-stats tbody tr", has_text="amount").all_inner_texts()
    assert any("max" in row for row in amount)
    # The other direction, chosen in the form: the URL is bookmarkable.
    page.select_option("#diff-a", "2")
    page.select_option("#diff-b", "1")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"[?&]a=2&b=1$"), timeout=5000)
    assert page.get_by_test_id("diff-rows").inner_text() == "Rows: 30 → 20 (-10)"
    ui.check(page, "dataset")
    reply = page.goto(f"{ui.base}/ui/data/transactions?a=9")
    assert reply is not None and reply.status == 400
    assert page.get_by_role("alert").inner_text().startswith("a: version 9 is not a version")
    assert ui.errors == []  # the page's own 400 is the test's to check (UI.watch)
    page.go_back()

    page.get_by_role("link", name="lineage graph of version 2").click()
    page.wait_for_url(f"{ui.base}/ui/lineage?node={quote(nodes['dataset'], safe='')}")
    page.locator("#lineage-graph[data-ready=true] canvas").first.wait_for()
    shown = set(page.locator("#lineage-nodes tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.node)"))  # fmt: skip
    api = page.request.get(f"{ui.base}/api/v1/lineage/{nodes['dataset']}").json()
    assert shown == {api["node"], *api["upstream"], *api["downstream"]}
    chain = ("dataset", "view", "training", "run", "model", "deployment")
    assert {nodes[k] for k in chain} <= shown
    assert nodes["sandbox_run"] not in shown  # another project's run stays out
    drawn = page.evaluate("window.ghafLineage.nodes().map(n => n.id())")
    assert set(drawn) == shown
    edges = page.evaluate(
        "window.ghafLineage.edges().map(e => e.source().id() + '>' + e.target().id())"
    )
    for a, b in itertools.pairwise(chain):  # dataset -> ... -> deployment, drawn
        assert f"{nodes[a]}>{nodes[b]}" in edges
    # The model's batch scores: drawn downstream of it, labelled predictions; the scored
    # input is upstream of the scores only, not of this dataset, so it is not drawn.
    assert nodes["predictions"] in drawn and nodes["inputs"] not in drawn
    assert f"{nodes['model']}>{nodes['predictions']}" in edges
    kind = page.locator(f"#lineage-nodes tr[data-node='{nodes['predictions']}'] td").first
    assert kind.inner_text() == "Predictions"
    ui.check(page, "lineage")

    _click_node(page, nodes["model"])
    page.wait_for_url(f"{ui.base}/ui/models/churn")
    assert page.locator("[data-version='1']").count() == 1
    page.go_back()
    page.locator("#lineage-graph[data-ready=true] canvas").first.wait_for()
    _click_node(page, nodes["run"])
    page.wait_for_url(f"{ui.base}/ui/runs/{nodes['run'].removeprefix('run:')}")
    page.go_back()
    page.locator("#lineage-graph[data-ready=true] canvas").first.wait_for()
    _click_node(page, nodes["predictions"])
    page.wait_for_url(f"{ui.base}/ui/data/churn_scores?version=1")
    derived = page.get_by_text("derived from").inner_text()
    assert nodes["model"] in derived and nodes["inputs"] in derived, derived

    page.get_by_role("link", name="Features", exact=True).click()
    page.wait_for_url(f"{ui.base}/ui/features")
    assert page.get_by_test_id("freshness-customer_spend").inner_text() == "fresh"
    row = page.locator("#view-customer_spend td").all_inner_texts()
    assert row[4] == "dataset:transactions" and row[6] == "5" and row[8] == "30d 0h"
    # Materialized as of three hours ago with a TTL of one hour: stale.
    assert page.get_by_test_id("freshness-customer_spend_hourly").inner_text() == "stale"
    age = page.locator("#view-customer_spend_hourly td").nth(7).inner_text()
    assert age.startswith("3h "), age
    ui.check(page, "features")
    assert ui.errors == []
    page.context.close()


def test_a_person_without_read_on_the_project_sees_no_dataset(
    seeded: tuple[UI, dict[str, str]],
) -> None:
    ui, nodes = seeded
    page = ui.sign_in("olga")
    page.goto(f"{ui.base}/ui/data")
    assert page.locator("#datasets tbody").inner_text().strip() == "No datasets you may read."
    reply = page.goto(f"{ui.base}/ui/data/transactions")
    assert reply is not None and reply.status == 404
    assert page.get_by_role("alert").inner_text() == "dataset 'transactions' does not exist"
    api = page.request.get(f"{ui.base}/api/v1/datasets/transactions")
    assert api.status == 404 and api.json()["title"] == "dataset 'transactions' does not exist"
    reply = page.goto(f"{ui.base}/ui/lineage?node={quote(nodes['dataset'], safe='')}")
    assert reply is not None and reply.status == 404
    assert "has no edges" in page.get_by_role("alert").inner_text()
    page.goto(f"{ui.base}/ui/features")
    assert "No feature views you may read." in page.locator("#feature-views").inner_text()
    # Her own project's run: its graph shows it, not alice's dataset it read.
    page.goto(f"{ui.base}/ui/lineage?node={quote(nodes['sandbox_run'], safe='')}")
    page.locator("#lineage-graph[data-ready=true] canvas").first.wait_for()
    shown = page.locator("#lineage-nodes tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.node)"
    )
    assert shown == [nodes["sandbox_run"]]
    reply = page.goto(f"{ui.base}/ui/lineage?node=nonsense")
    assert reply is not None and reply.status == 400
    assert "is not a node id" in page.get_by_role("alert").inner_text()
    # The browser logs each refused page's status; nothing else went wrong.
    refused = [f"{ui.base}/ui/data/transactions", f"{ui.base}/api/v1/datasets/transactions",
               f"{ui.base}/ui/lineage?node={quote(nodes['dataset'], safe='')}",
               f"{ui.base}/ui/lineage?node=nonsense"]  # fmt: skip
    others = [
        e for e in ui.errors if not any(e.startswith(f"{u}: Failed to load") for u in refused)
    ]
    ui.errors.clear()
    assert others == []
    page.context.close()
