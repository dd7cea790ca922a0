"""Cost: a pipeline run, a tracked run, a batch job and a served deployment record what
they held and used, and the report is that usage x the price sheet, by each grouping.

One home for the module: ``fraud@champion`` served by a real ``ghaf serve`` (scored, then
stopped with SIGTERM, so its last segment is recorded) beside a real ``ghaf server``
(the HTTP door), and the ``numbers`` pipeline run on the local executor.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from ghaf.access.tokens import verify_token
from ghaf.cli.main import app
from ghaf.cost import GROUPINGS, PriceSheet, StoredUsage, Usage, cost_report, list_usage
from ghaf.cost.meter import metered_scope
from ghaf.cost.report import build_report
from ghaf.cost.store import record_usage
from ghaf.demo.stage_cost import demo_costs
from ghaf.errors import InvalidInputError, PermissionDeniedError
from ghaf.home import init_home
from ghaf.pipelines import PipelineRun, run_pipeline
from ghaf.pipelines.examples import numbers
from ghaf.pipelines.local import LocalExecutor
from ghaf.platform import Platform
from ghaf.server.app import create_app
from ghaf.serving.metering import BatchMeter
from ghaf.serving.server import background_server
from ghaf.settings import load_settings
from ghaf.testing.people import mint
from ghaf.tracking import start_run
from tests.integration.served_home import oip
from tests.unit.serving.server_processes import ServerProcess, bearer, register_champion

DEPLOYMENT = "fraud-live"
REQUESTS, ROWS = 3, 4
"""Requests sent to the served champion, and rows in each."""
PAST = datetime(2020, 3, 1, tzinfo=UTC)
"""Where the synthetic records of the reference check live, apart from everything else."""


@dataclass
class World:
    platform: Platform
    home: Path
    server: str
    """The control plane's URL."""
    pipeline: PipelineRun
    viewer: str
    """A token of a viewer bound on every project: reads every project's costs."""
    serve_log: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from sklearn.linear_model import LogisticRegression

    work = tmp_path_factory.mktemp("cost")
    home = work / "home"
    platform = init_home(load_settings(home=home))
    x = np.random.default_rng(3).normal(size=(40, 3)).astype(np.float32)
    register_champion(
        platform, LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), work / "saved", x[:3]
    )
    scorer = mint(platform, "scorer", ["model_server"])
    serve = ServerProcess(
        home, ("serve", "fraud@champion", "--deployment", DEPLOYMENT), "/v2/health/ready",
        work / "serve.log",
    )  # fmt: skip
    serve.start()
    # The control plane in this process, over real HTTP on loopback (its own platform:
    # the app closes it when it stops).
    control = ExitStack()
    server = control.enter_context(
        background_server(create_app(Platform(load_settings(home=home))))
    )
    try:
        rows = np.random.default_rng(4).normal(size=(ROWS, 3)).astype(np.float32)
        with httpx.Client(base_url=serve.url, headers=bearer(scorer), timeout=30) as client:
            for _ in range(REQUESTS):
                answer = client.post("/v2/models/fraud/infer", json=oip(rows))
                assert answer.status_code == 200, answer.text
        serve_log = serve.stop()  # SIGTERM: the server records its last segment and exits
        executor = LocalExecutor(max_workers=2)
        try:
            run = run_pipeline(platform, platform.admin(), numbers(200), executor=executor)
        finally:
            executor.close()
        assert run.status == "succeeded"
        viewer = mint(platform, "val", ["viewer"])
        yield World(platform, home, server, run, viewer, serve_log)
    finally:
        serve.stop()
        control.close()
        platform.close()


def _expected(records: list[StoredUsage], prices: PriceSheet, by: str) -> dict[Any, dict[str, Any]]:
    """The reference: each record's resources as max(request x hours, used) x price,
    summed per group by hand (records inside another record left out)."""
    groups: dict[Any, dict[str, Any]] = {}
    for stored in records:
        u = stored.usage
        if u.within:
            continue
        key = {"project": stored.project, "user": stored.user}.get(by) or (
            u.model if by == "model" else u.deployment if by == "deployment" else None
        )
        hours = u.wall_s / 3600
        gpu_price = prices.gpu_classes.get(u.gpu_class or "", prices.gpu_hour)
        billed = (
            max(u.cpu_request * hours, u.cpu_s / 3600) * prices.cpu_hour
            + max(u.memory_request_gb * hours, u.memory_gb_hours) * prices.memory_gb_hour
            + max(u.gpu_request * hours, u.gpu_s / 3600) * gpu_price
        )
        used = (
            u.cpu_s / 3600 * prices.cpu_hour
            + u.memory_gb_hours * prices.memory_gb_hour
            + u.gpu_s / 3600 * gpu_price
        )
        group = groups.setdefault(key, {"cost": 0.0, "idle": 0.0, "served": 0.0, "n": 0})
        group["cost"] += billed
        group["idle"] += billed - used
        if u.kind == "deployment":
            group["served"] += billed
            group["n"] += u.predictions
    return groups


def _check_against_reference(
    document: dict[str, Any], records: list[StoredUsage], prices: PriceSheet
) -> None:
    expected = _expected(records, prices, document["by"])
    got = {g["key"]: g for g in document["groups"]}
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert got[key]["cost"] == pytest.approx(want["cost"], rel=1e-9, abs=1e-15)
        assert got[key]["idle_cost"] == pytest.approx(want["idle"], rel=1e-9, abs=1e-15)
        assert got[key]["predictions"] == want["n"]
        per_1000 = got[key]["cost_per_1000_predictions"]
        if want["n"]:
            assert per_1000 == pytest.approx(want["served"] / want["n"] * 1000, rel=1e-9)
        else:
            assert per_1000 is None
    total = sum(w["cost"] for w in expected.values())
    assert document["total"]["cost"] == pytest.approx(total, rel=1e-9, abs=1e-15)


def test_a_pipeline_run_records_what_each_step_held_and_used(world: World) -> None:
    run = world.pipeline
    records = list_usage(world.platform, kind="pipeline_step", parent=run.id)
    assert {r.usage.ref for r in records} == {f"{s.id}:1" for s in run.steps}
    for stored in records:
        u = stored.usage
        assert (stored.project, stored.user) == ("default", world.platform.admin().name)
        assert u.cpu_request == 1.0  # the steps' default request: one vCPU each
        assert u.wall_s > 0 and u.cpu_s > 0 and u.memory_peak_gb > 0
        assert u.gpu_s == 0 and u.gpu_class is None  # no CUDA context in these steps
    # The demo's line over the same run is these records x the price sheet.
    pipeline, _ = demo_costs(world.platform, run.id, DEPLOYMENT)
    prices = PriceSheet.from_settings(world.platform.settings.cost)
    want = _expected(records, prices, "project")["default"]["cost"]
    assert pipeline.cost == pytest.approx(want, rel=1e-9) and pipeline.cost > 0


def test_a_served_deployment_records_segments_with_its_predictions(world: World) -> None:
    records = list_usage(world.platform, kind="deployment", deployment=DEPLOYMENT)
    assert records, world.serve_log
    assert sum(r.usage.predictions for r in records) == REQUESTS * ROWS
    sessions = {r.usage.parent for r in records}
    assert len(sessions) == 1
    for stored in records:
        u = stored.usage
        assert (u.model, u.replicas, u.cpu_request) == ("fraud", 1, 1.0)
        assert u.wall_s > 0 and u.memory_gb_hours > 0
    # Segments follow one another: what one ended, the next starts from.
    ordered = sorted(records, key=lambda r: r.usage.ref)
    for before, after in itertools.pairwise(ordered):
        assert after.usage.started_at == before.usage.ended_at
    _, served = demo_costs(world.platform, world.pipeline.id, DEPLOYMENT)
    prices = PriceSheet.from_settings(world.platform.settings.cost)
    want = _expected(records, prices, "deployment")[DEPLOYMENT]
    assert served.cost == pytest.approx(want["cost"], rel=1e-9)
    assert served.predictions == REQUESTS * ROWS
    assert served.per_1000_predictions == pytest.approx(want["cost"] / (REQUESTS * ROWS) * 1000)
    assert served.idle > 0  # a server holds its vCPU while it waits for requests


def test_the_report_reconciles_with_usage_times_prices_by_each_grouping(world: World) -> None:
    platform, admin = world.platform, world.platform.admin()
    hour = timedelta(hours=1)
    synthetic = [  # (project, Usage): every resource, idle and busy, GPU classes, nesting
        ("default", Usage("batch", "b1", PAST, PAST + hour, 3600, cpu_s=7200, cpu_request=4,
                          memory_gb_hours=3, model="fraud", predictions=10_000)),
        ("default", Usage("deployment", "s1:1", PAST, PAST + hour, 3600, cpu_s=360,
                          cpu_request=2, memory_gb_hours=1.5, memory_request_gb=2,
                          gpu_class="nvidia-h100", gpu_s=1800, gpu_request=1, replicas=2,
                          predictions=4_000, model="fraud", deployment="fraud-live")),
        ("risk", Usage("deployment", "s2:1", PAST, PAST + 2 * hour, 7200, cpu_s=100,
                       cpu_request=1, memory_gb_hours=0.5, predictions=0, model="churn",
                       deployment="churn-live")),
        ("risk", Usage("pipeline_step", "st:1", PAST, PAST + hour, 3600, cpu_s=900,
                       cpu_request=1, gpu_class="nvidia-a10", gpu_s=3600, gpu_request=0)),
        ("risk", Usage("run", "r-in", PAST, PAST + hour, 3600, cpu_s=900,
                       within="pipeline_step:st:1")),
    ]  # fmt: skip
    for project, usage in synthetic:
        record_usage(platform.in_project(project), admin, usage)
    since, until = PAST - hour, PAST + 3 * hour
    records = list_usage(platform, since=since, until=until)
    assert len(records) == len(synthetic)
    sheet = PriceSheet.from_settings(platform.settings.cost)
    for by in GROUPINGS:
        document = cost_report(platform, admin, by=by, since=since, until=until)
        assert document["nested_records"] == 1
        _check_against_reference(document, records, sheet)
    # Another price sheet (a class priced apart) changes only the prices.
    dear = PriceSheet("AED", 0.5, 0.1, 4.0, {"nvidia-h100": 12.0})
    for by in GROUPINGS:
        _check_against_reference(build_report(records, dear, by, since, until), records, dear)
    # OpenCost's defaults are the default sheet.
    assert PriceSheet.from_settings(platform.settings.cost) == PriceSheet(
        "USD", 0.031611, 0.004237, 0.95, {}
    )


def test_a_tracked_run_records_its_usage_and_nested_runs_count_once(platform: Platform) -> None:
    with start_run("outer", platform=platform) as outer:
        sum(i * i for i in range(300_000))  # some CPU to measure
        with start_run("inner", platform=platform) as inner:
            pass
    with metered_scope("pipeline_step:abc:1"), start_run("in-step", platform=platform) as step:
        pass
    found = {r.usage.ref: r.usage for r in list_usage(platform, kind="run")}
    assert found[outer.run_id].cpu_s > 0.01 and found[outer.run_id].within is None
    assert found[inner.run_id].within == f"run:{outer.run_id}"
    assert found[step.run_id].within == "pipeline_step:abc:1"


def test_a_batch_job_records_its_predictions_and_a_failed_one_nothing(platform: Platform) -> None:
    admin = platform.admin()
    with BatchMeter(platform, admin, "fraud", workers=3) as meter:
        meter.predictions = 5_000
    with pytest.raises(RuntimeError), BatchMeter(platform, admin, "fraud", workers=3):
        raise RuntimeError("scoring failed")
    (stored,) = list_usage(platform, kind="batch")
    assert stored.usage == meter.usage
    assert (stored.usage.predictions, stored.usage.cpu_request) == (5_000, 3.0)


def _cli(world: World, *args: str) -> Any:
    result = CliRunner().invoke(
        app, ["--home", str(world.home), "--token", world.viewer, "cost", "report", *args]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_cli_and_the_http_route_give_the_same_report(world: World) -> None:
    window = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    with httpx.Client(base_url=world.server, headers=bearer(world.viewer)) as http:
        for by in GROUPINGS:
            answer = http.get("/api/v1/cost", params={"by": by, **window})
            assert answer.status_code == 200, answer.text
            cli = _cli(world, "--by", by, "--since", window["since"], "--until",
                       window["until"], "-o", "json")  # fmt: skip
            assert cli == answer.json()
            assert cli["total"]["records"] > 0


def test_usage_is_recorded_over_http_by_who_may_and_refused_to_a_viewer(world: World) -> None:
    body = {"kind": "batch", "ref": "gpu-box-7", "started_at": "2026-01-01T10:00:00Z",
            "ended_at": "2026-01-01T11:00:00Z", "wall_s": 3600, "gpu_s": 3600,
            "gpu_class": "nvidia-h100", "model": "fraud"}  # fmt: skip
    engineer = mint(world.platform, "dee", ["data_engineer"])
    with httpx.Client(base_url=world.server) as http:
        done = http.post("/api/v1/projects/default/usage", json=body, headers=bearer(engineer))
        assert done.status_code == 200, done.text
        assert (done.json()["user"], done.json()["project"]) == ("dee", "default")
        refused = http.post(
            "/api/v1/projects/default/usage", json=body, headers=bearer(world.viewer)
        )
        assert refused.status_code == 403
        bad = http.post(
            "/api/v1/projects/default/usage", json={**body, "wall_s": -1}, headers=bearer(engineer)
        )
        assert bad.status_code == 400 and "wall_s" in bad.text
    (stored,) = list_usage(world.platform, kind="batch", ref="gpu-box-7")
    assert stored.usage.gpu_s == 3600


def test_bad_by_or_since_is_one_clear_line_at_each_door(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ghaf.cli.main import run

    for args, field in ((["--by", "team"], "--by 'team'"), (["--since", "last week"], "--since")):
        monkeypatch.setattr(sys, "argv", ["ghaf", "--home", str(world.home), "cost", "report",
                                          *args])  # fmt: skip
        with pytest.raises(SystemExit) as exited:
            run()
        err = capsys.readouterr().err
        assert exited.value.code != 0
        assert err.startswith(f"error: {field}") and "hint:" in err, err
    with httpx.Client(base_url=world.server, headers=bearer(world.viewer)) as http:
        for params in ({"by": "team"}, {"since": "yesterday"}):
            answer = http.get("/api/v1/cost", params=params)
            assert answer.status_code == 400, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
    with pytest.raises(InvalidInputError, match="not before"):
        cost_report(world.platform, world.platform.admin(), since=PAST, until=PAST)
    elsewhere = mint(world.platform, "nob", ["viewer"], project="other", bind_on="other")
    nobody = verify_token(world.platform, elsewhere, source="test")
    with pytest.raises(PermissionDeniedError):
        cost_report(world.platform, nobody, since=PAST, project="default")
