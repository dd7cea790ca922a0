"""W8, issue 19: the web UI's speed in Chromium, against MLflow's UI on the same data.

``runs`` finished runs x ``metrics`` metrics x ``steps`` steps (100,000 x 20 x 100 at full
size) on PostgreSQL, read by ``ghaf server``'s UI signed in as the home's owner (a one-time
``ghaf ui login-link``). Each figure is the median of ``loads`` page loads, each in a fresh
browser context (a cold HTTP cache), timed inside the page from its navigation start:

1. the runs page: first contentful paint, and the moment its table holds its rows;
2. filtering: a search-language filter typed and applied, until the table shows the
   filtered rows (from the click);
3. comparing 100 runs: ``/ui/compare?runs=...`` until every chart is drawn;
4. a registered model's page (three versions) until its versions are shown.

The anchor is MLflow's own UI (``mlflow server`` on PostgreSQL, in its own venv) with the
same runs, params, tags and latest metrics loaded straight into its tables, timed the same
way on the same four pages: the experiment's runs table, its search box, the compare-runs
page of the same 100 runs, and a registered model's page. MLflow keeps one ``metrics`` row
per point: its full history is loaded for the 100 compared runs only (each figure's note
says so); at smoke size MLflow is skipped.

Seeding goes straight into the tables, as ``control_plane._seed_runs`` does: making
100,000 runs through the API would take longer than the whole suite, and each row is what
a run logged through it leaves. Ghaf's metric history (one chunk row per run and key, packed
by :mod:`ghaf.tracking.chunks`) is built server-side: 16 pre-packed variants per key joined
with the runs in one ``INSERT ... SELECT``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

import ghaf
from benchmarks.anchor_venvs import MLFLOW_PIN, ensure
from benchmarks.common import Figure
from benchmarks.control_plane import (
    _analyze,
    _free_port,
    _seed_runs,
    _wait_healthy,
    ghaf_server,
    postgres_database,
)

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"runs": 300, "metrics": 5, "steps": 10, "loads": 3, "mlflow": False},
    "full": {"runs": 100_000, "metrics": 20, "steps": 100, "loads": 5, "mlflow": True},
}
LIMITS_MS = {"runs_fcp": 1500.0, "runs_table": 1500.0, "filter": 1000.0, "compare": 2000.0,
             "compare_curves": 2000.0, "model": 1000.0}  # fmt: skip
"""Issue 19's limits: runs page usable 1.5 s, filtering 1 s, compare 100 runs 2 s, model 1 s."""
COMPARED = 100
FILTER = "metrics.m3 > 0.5 and params.lr = '0.05'"
MODEL = "bench-model"
VERSIONS = 3
CHROMIUM = "/usr/bin/chromium"
EXPERIMENT = "ui-bench"
VARIANTS = 16
"""Distinct metric histories per key; a run's is its id's last hex digit."""
TIMEOUT_MS = 120_000
MLFLOW_VERSION = MLFLOW_PIN.split("==")[1]


def _curve(variant: int, key_index: int, steps: int) -> np.ndarray[Any, Any]:
    """A loss-like curve: decaying with a little deterministic wiggle."""
    x = np.arange(steps, dtype=np.float64)
    scale = 1.0 + variant / VARIANTS + key_index / 10.0
    return scale / (x + 1.0) + 0.01 * np.sin(x * (1 + variant) / 7.0)


def _seed_history(metadata_url: str, experiment: str, metrics: int, steps: int) -> tuple[int, int]:
    """One chunk row per run and key in ``run_metrics``: VARIANTS x metrics pre-packed
    chunks (:class:`ghaf.tracking.chunks.Chunk`) joined with the runs in one statement."""
    from sqlalchemy import (
        BigInteger,
        Column,
        Integer,
        LargeBinary,
        MetaData,
        String,
        Table,
        create_engine,
        insert,
        text,
    )

    from ghaf.tracking.chunks import Chunk

    meta = MetaData()
    variants = Table(
        "bench_chunk_variants", meta,
        Column("variant", String(1)), Column("key", String(250)), Column("count", Integer),
        Column("min_step", BigInteger), Column("max_step", BigInteger),
        Column("steps", LargeBinary), Column("values", LargeBinary),
        Column("timestamps", LargeBinary),
    )  # fmt: skip
    rows = []
    stamps = 1_767_225_600.0 + np.arange(steps, dtype=np.float64)
    for v in range(VARIANTS):
        for k in range(metrics):
            chunk = Chunk(f"m{k}", np.arange(steps, dtype=np.int64), _curve(v, k, steps), stamps)
            rows.append({"variant": f"{v:x}", **chunk.row()})
    engine = create_engine(metadata_url)
    with engine.begin() as conn:
        meta.create_all(conn)
        conn.execute(insert(variants), rows)
        conn.execute(
            text(
                'INSERT INTO run_metrics (run_id, key, count, min_step, max_step, steps, "values",'
                " timestamps) SELECT r.id, v.key, v.count, v.min_step, v.max_step, v.steps,"
                ' v."values", v.timestamps FROM runs r JOIN experiments e ON'
                " e.id = r.experiment_id JOIN bench_chunk_variants v ON v.variant ="
                " substr(r.id, 32, 1) WHERE e.name = :name"
            ),
            {"name": experiment},
        )
        meta.drop_all(conn)
        made = conn.execute(
            text(
                "SELECT count(*), sum(m.count) FROM run_metrics m JOIN runs r ON r.id = m.run_id"
                " JOIN experiments e ON e.id = r.experiment_id WHERE e.name = :name"
            ),
            {"name": experiment},
        ).one()
    engine.dispose()
    return int(made[0]), int(made[1] or 0)


def _run_ids(runs: int) -> list[str]:
    """The compared runs: 100 spread over all (ids as ``_seed_runs`` makes them)."""
    count = min(COMPARED, runs)
    return [f"{i * (runs // count):032x}" for i in range(count)]


def _register_model(home: Path, metadata_url: str | None, url: str, token: str) -> None:
    """``bench-model`` versions 1..3 (a small sklearn model) through the API."""
    from sklearn.linear_model import LogisticRegression

    from ghaf.models import save_model

    x = np.random.default_rng(7).normal(size=(64, 4)).astype(np.float32)
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), home / "model")
    with ghaf.connect(url, token=token) as client:
        for _ in range(VERSIONS):
            client.register_model(MODEL, home / "model", project="w7")


def _login_link(home: Path, metadata_url: str | None, url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAF_")}
    env["GHAF_HOME"] = str(home)
    if metadata_url:
        env["GHAF_METADATA_URL"] = metadata_url
    done = subprocess.run(
        [sys.executable, "-m", "ghaf", "ui", "login-link", "--url", url, "-o", "json"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return str(json.loads(done.stdout)["url"])


# The browser ---------------------------------------------------------------------------

_UNTIL = """([selector, count]) => {
  const found = document.querySelectorAll(selector).length;
  return found >= count ? performance.now() : false;
}"""
_FCP = """() => {
  const e = performance.getEntriesByName('first-contentful-paint')[0];
  return e ? e.startTime : false;
}"""


class Browser:
    """Chromium with a signed-in state; each load in a fresh context (a cold cache)."""

    def __init__(self, pw: Any) -> None:
        self.browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        self.state: Any = None

    def context(self) -> Any:
        return self.browser.new_context(
            viewport={"width": 1280, "height": 900}, storage_state=self.state, bypass_csp=True
        )

    def until(self, page: Any, selector: str, count: int = 1) -> float:
        """performance.now() when ``selector`` first matches ``count`` elements."""
        handle = page.wait_for_function(
            _UNTIL, arg=[selector, count], polling="raf", timeout=TIMEOUT_MS
        )
        return float(handle.json_value())

    def fcp(self, page: Any) -> float:
        return float(page.wait_for_function(_FCP, timeout=TIMEOUT_MS).json_value())

    def median(self, loads: int, measure: Callable[[Any], float]) -> float:
        """The median ms of ``loads`` runs of ``measure`` (each listed on stderr)."""
        times = []
        for _ in range(loads):
            context = self.context()
            try:
                times.append(measure(context.new_page()))
            finally:
                context.close()
        label = getattr(measure, "__qualname__", "load").replace(".<locals>.", ": ")
        print(f"# ui_speed: {label} ms: {[round(t) for t in times]}", file=sys.stderr)
        return statistics.median(times)

    def close(self) -> None:
        self.browser.close()


@contextmanager
def _chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = Browser(pw)
        try:
            yield browser
        finally:
            browser.close()


def _measure_ghaf(browser: Browser, base: str, link: str, size: dict[str, Any]) -> dict[str, float]:
    context = browser.browser.new_context()
    page = context.new_page()
    page.goto(link)
    assert page.url == base + "/ui/runs", page.url
    browser.state = context.storage_state()
    context.close()
    rows = min(50, size["runs"])
    loads = size["loads"]
    figures: dict[str, float] = {}
    fcps: list[float] = []

    def runs_page(page: Any) -> float:
        page.goto(base + "/ui/runs", wait_until="commit")
        filled = browser.until(page, "#runs-table tbody tr td a", rows)
        fcps.append(browser.fcp(page))
        return filled

    figures["runs_table"] = browser.median(loads, runs_page)
    figures["runs_fcp"] = statistics.median(fcps)

    def filtering(page: Any) -> float:
        page.goto(base + "/ui/runs")
        browser.until(page, "#runs-table tbody tr td a", rows)
        page.fill("#q", FILTER)
        page.evaluate("document.querySelector('#runs-table').dataset.old = '1'")
        started = float(page.evaluate("performance.now()"))
        page.get_by_role("button", name="Apply").click()
        done = browser.until(page, "#runs-table:not([data-old]) tbody tr td a", 1)
        shown = page.locator("#runs-table tbody tr").count()
        assert shown > 0 and "q=metrics.m3" in page.url, (shown, page.url)
        return done - started

    figures["filter"] = browser.median(loads, filtering)
    ids = _run_ids(size["runs"])

    def compare(page: Any) -> float:
        page.goto(base + "/ui/compare?runs=" + ",".join(ids), wait_until="commit")
        browser.until(page, "#main[data-drawn=true]")
        charts = page.locator("#compare-charts .chart").count()
        browser.until(page, "#compare-charts .chart canvas", charts)
        drawn = float(page.locator("#main").get_attribute("data-drawn-ms") or 0)
        assert charts >= 1 and page.locator("#compare-charts .chart[data-series]").count()
        return drawn

    figures["compare"] = browser.median(loads, compare)
    figures["compare_curves"] = figures["compare"]  # the same page, beside MLflow's curves

    def model(page: Any) -> float:
        page.goto(f"{base}/ui/models/{MODEL}", wait_until="commit")
        shown = browser.until(page, "article.version[data-version]", VERSIONS)
        return max(shown, browser.fcp(page))

    figures["model"] = browser.median(loads, model)
    return figures


# MLflow's UI -------------------------------------------------------------------------


def _seed_mlflow(db_url: str, experiment_id: str, artifacts: Path, size: dict[str, Any]) -> None:
    """The same runs, params, tags and latest metrics as Ghaf's (same ids, names and
    values), built server-side; the full history (one row per point) of the compared runs."""
    from sqlalchemy import create_engine, text

    runs, metrics, steps = size["runs"], size["metrics"], size["steps"]
    engine = create_engine(db_url)
    started_ms = 1_767_225_600_000
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name,"
                " user_id, status, start_time, end_time, source_version, lifecycle_stage,"
                " artifact_uri, experiment_id) SELECT lpad(to_hex(i), 32, '0'), 'run-' || i,"
                " 'LOCAL', '', '', 'bench', 'FINISHED', :t + i * 1000, :t + i * 1000 + 1000, '',"
                " 'active', :art || lpad(to_hex(i), 32, '0') || '/artifacts', :e"
                " FROM generate_series(0, :n - 1) AS i"
            ),
            {"t": started_ms, "art": f"{artifacts}/", "e": int(experiment_id), "n": runs},
        )
        conn.execute(
            text(
                "INSERT INTO params (key, value, run_uuid) SELECT p.key, CASE p.key WHEN 'lr'"
                " THEN to_char((i % 10) / 100.0, 'FM0.00') ELSE (i % 12)::text END,"
                " lpad(to_hex(i), 32, '0') FROM generate_series(0, :n - 1) AS i,"
                " (VALUES ('lr'), ('depth')) AS p(key)"
            ),
            {"n": runs},
        )
        conn.execute(
            text(
                "INSERT INTO tags (key, value, run_uuid) SELECT 'team',"
                " (ARRAY['a', 'b', 'c'])[i % 3 + 1], lpad(to_hex(i), 32, '0')"
                " FROM generate_series(0, :n - 1) AS i"
            ),
            {"n": runs},
        )
        conn.execute(
            text(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
                " SELECT 'm' || k, ((i::bigint * 7919 + k * 104729) % 100000) / 100000.0, 0,"
                " 9, false, lpad(to_hex(i), 32, '0') FROM generate_series(0, :n - 1) AS i,"
                " generate_series(0, :m - 1) AS k"
            ),
            {"n": runs, "m": metrics},
        )
        stamps = (started_ms + np.arange(steps) * 1000).tolist()
        for run_id in _run_ids(runs):
            variant = int(run_id[-1], 16)
            conn.execute(
                text(
                    "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
                    " SELECT :key, v, t, :run, s, false FROM unnest("
                    "CAST(:values AS double precision[]), CAST(:stamps AS bigint[]),"
                    " CAST(:steps AS bigint[])) AS u(v, t, s)"
                ),
                [
                    {"key": f"m{k}", "run": run_id, "values": _curve(variant, k, steps).tolist(),
                     "stamps": stamps, "steps": list(range(steps))}
                    for k in range(metrics)
                ],
            )  # fmt: skip
        conn.execute(text("ANALYZE"))
    engine.dispose()


@contextmanager
def _mlflow_server(home: Path, db_url: str) -> Iterator[str]:
    python = ensure("mlflow")
    if python is None:
        raise RuntimeError("the mlflow anchor venv could not be made")
    pip = [str(python), "-m", "pip", "install", "-q", "psycopg2-binary"]
    if subprocess.run([str(python), "-c", "import psycopg2"], capture_output=True).returncode:
        subprocess.run(pip, check=True, capture_output=True)
    port = _free_port()
    process = subprocess.Popen(
        [str(python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", db_url.replace("+psycopg:", "+psycopg2:"),
         "--default-artifact-root", str(home / "mlruns"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, timeout=300)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def _mlflow_api(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{url}/api/2.0/mlflow/{path}", json=body, timeout=60)
    reply.raise_for_status()
    return dict(reply.json())


_MLFLOW_RUN_LINKS = """([count]) => {
  const names = Array.from(document.querySelectorAll('.ag-row a[href*="/runs/"]'))
    .map(a => a.textContent.trim());
  return names.length >= count ? performance.now() : false;
}"""
_MLFLOW_FILTERED = """() => {
  const names = Array.from(document.querySelectorAll('.ag-row a[href*="/runs/"]'))
    .map(a => a.textContent.trim());
  return names.length > 0 && names.every(n => n.endsWith('5')) ? performance.now() : false;
}"""
"""The filter keeps runs with lr = 0.05, that is run-N with N ending in 5."""
_MLFLOW_CURVES = """([count]) => {
  const traces = document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length;
  const done = document.body.innerText.includes(count + '/' + count);
  return done && traces >= count ? performance.now() : false;
}"""
"""The metric page has fetched every run's history (``Completed Runs N/N``) and plotted
a trace per run."""


def _measure_mlflow(
    browser: Browser, base: str, experiment_id: str, size: dict[str, Any]
) -> dict[str, float]:
    browser.state = None
    loads = size["loads"]
    visible = min(10, size["runs"])  # ag-grid draws only the rows in view
    runs_url = f"{base}/#/experiments/{experiment_id}/runs"
    figures: dict[str, float] = {}
    fcps: list[float] = []

    def wait(page: Any, script: str, *arg: Any) -> float:
        handle = page.wait_for_function(script, arg=list(arg), polling="raf", timeout=TIMEOUT_MS)
        return float(handle.json_value())

    def runs_page(page: Any) -> float:
        page.goto(runs_url, wait_until="commit")
        filled = wait(page, _MLFLOW_RUN_LINKS, visible)
        fcps.append(browser.fcp(page))
        return filled

    figures["runs_table"] = browser.median(loads, runs_page)
    figures["runs_fcp"] = statistics.median(fcps)

    def filtering(page: Any) -> float:
        page.goto(runs_url)
        wait(page, _MLFLOW_RUN_LINKS, visible)
        box = page.locator('input[data-testid="search-box"]')
        box.fill(FILTER)
        started = float(page.evaluate("performance.now()"))
        box.press("Enter")
        return wait(page, _MLFLOW_FILTERED) - started

    figures["filter"] = browser.median(loads, filtering)
    ids = json.dumps(_run_ids(size["runs"]))
    compare_url = f"{base}/#/compare-runs?runs={ids}&experiments={json.dumps([experiment_id])}"
    count = len(_run_ids(size["runs"]))

    def compare(page: Any) -> float:
        page.goto(compare_url, wait_until="commit")
        plotted = browser.until(page, ".js-plotly-plot .main-svg")
        names = browser.until(page, 'a[href*="/runs/"]', count)
        return max(plotted, names)

    figures["compare"] = browser.median(loads, compare)
    # Its per-step curves are on the metric page: one metric of the 100 runs (one history
    # request per run and metric, so not all the metrics Ghaf's compare page charts).
    query = {
        "runs": ids, "metric": '"m0"', "experiments": json.dumps([experiment_id]),
        "plot_metric_keys": '["m0"]', "plot_layout": "{}", "x_axis": "step",
        "y_axis_scale": "linear", "line_smoothness": "1", "show_point": "false",
        "deselected_curves": "[]", "last_linear_y_axis_range": "[]",
    }  # fmt: skip
    metric_url = f"{base}/#/metric/?" + "&".join(f"{k}={v}" for k, v in query.items())

    def curves(page: Any) -> float:
        page.goto(metric_url, wait_until="commit")
        return wait(page, _MLFLOW_CURVES, count)

    figures["compare_curves"] = browser.median(loads, curves)

    def model(page: Any) -> float:
        page.goto(f"{base}/#/models/{MODEL}", wait_until="commit")
        shown = browser.until(page, f'a[href*="/models/{MODEL}/versions/"]', VERSIONS)
        return max(shown, browser.fcp(page))

    figures["model"] = browser.median(loads, model)
    return figures


def _mlflow(home: Path, size: dict[str, Any]) -> tuple[dict[str, float], str]:
    """MLflow's UI on the same data: (figures by key, the note saying how)."""
    with postgres_database() as pg:
        if pg is None:
            return {}, "MLflow's UI not measured: it is measured on PostgreSQL only"
        with _mlflow_server(home, pg) as url:
            experiment_id = _mlflow_api(url, "experiments/create", {"name": EXPERIMENT})[
                "experiment_id"
            ]
            seeding = time.perf_counter()
            _seed_mlflow(pg, experiment_id, home / "mlruns" / experiment_id, size)
            print(f"# ui_speed: mlflow seeded in {time.perf_counter() - seeding:.0f} s",
                  file=sys.stderr)  # fmt: skip
            first = _run_ids(size["runs"])[0]
            _mlflow_api(url, "registered-models/create", {"name": MODEL})
            version = {"name": MODEL, "source": f"runs:/{first}/model", "run_id": first}
            for _ in range(VERSIONS):
                _mlflow_api(url, "model-versions/create", version)
            with _chromium() as browser:
                figures = _measure_mlflow(browser, url, experiment_id, size)
    compared = len(_run_ids(size["runs"]))
    note = (
        f"anchor: MLflow {MLFLOW_VERSION} UI on PostgreSQL with the same runs, params, tags"
        f" and latest metrics; its per-point metrics table holds the full history of the"
        f" {compared} compared runs only. Ghaf's compare page (one uPlot chart per metric,"
        f" up to 12, each with the {compared} runs' curves, plus parallel coordinates and the"
        " params diff) is set beside two MLflow pages: compare: its compare-runs page (a"
        " parallel-coordinates plot and the runs' table, no per-step curves), timed until"
        f" both are shown; compare_curves: its metric page plotting ONE metric's {compared}"
        " curves (one history request per run and metric), timed until Completed Runs is"
        " full and a trace per run is drawn. Its runs table draws only the rows in view"
        " (timed until 10 are)"
    )
    return figures, note


def run(size_name: str) -> list[Figure]:
    size = SIZES[size_name]
    with tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp:
        home = Path(tmp)
        with postgres_database() as pg, ghaf_server(home / "ghaf", pg) as (url, token, _):
            metadata_url = pg or f"sqlite:///{home}/ghaf/ghaf.db"
            made = httpx.post(
                url + "/api/v1/experiments",
                json={"name": EXPERIMENT, "project": "w7"},
                headers={"authorization": f"Bearer {token}"},
            )
            made.raise_for_status()
            seeding = time.perf_counter()
            _seed_runs(metadata_url, EXPERIMENT, size["runs"], size["metrics"])
            chunks, points = _seed_history(metadata_url, EXPERIMENT, size["metrics"], size["steps"])
            expected = size["runs"] * size["metrics"]
            if (chunks, points) != (expected, expected * size["steps"]):
                raise RuntimeError(f"seeded {chunks} chunks of {points} points, not {expected}")
            _analyze(pg)
            _register_model(home, pg, url, token)
            print(f"# ui_speed: ghaf seeded ({chunks} chunks, {points} points) in"
                  f" {time.perf_counter() - seeding:.0f} s",
                  file=sys.stderr)  # fmt: skip
            link = _login_link(home / "ghaf", pg, url)
            with _chromium() as browser:
                ghaf = _measure_ghaf(browser, url, link, size)
        backend = "postgresql" if pg else "sqlite"
        anchor: dict[str, float] = {}
        note = "MLflow's UI not measured at smoke size"
        if size["mlflow"]:
            anchor, note = _mlflow(home / "mlflow", size)
    shape = f"{size['runs']}x{size['metrics']}x{size['steps']}_{backend}"
    names = {
        "runs_fcp": "runs page first contentful paint",
        "runs_table": "runs page table filled",
        "filter": f"filter {FILTER!r} applied",
        "compare": f"compare-runs page of {min(COMPARED, size['runs'])} runs",
        "compare_curves": f"metric page, one metric's curves of {min(COMPARED, size['runs'])} runs",
        "model": f"model page ({VERSIONS} versions) shown",
    }
    return [
        Figure(
            f"w8_ui_{key}_ms_{shape}",
            ghaf[key],
            "ms",
            f"mlflow ui: {names[key]}" if key in anchor else None,
            anchor.get(key),
            higher_is_better=False,
            limit=LIMITS_MS[key],
            note=note,
        )
        for key in ("runs_fcp", "runs_table", "filter", "compare", "compare_curves", "model")
    ]
