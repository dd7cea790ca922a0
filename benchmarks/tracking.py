"""W1: tracking. Ghaf vs MLflow (its own venv, SQLite backend) vs raw sqlite3, same run.

One run logs N metric points one call at a time, then N in one batch call, plus 100
params; then 500 runs exist and a search filters on a metric (``metrics.auc > 0.5``,
ordered by it, top 100).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.anchor_venvs import ensure
from benchmarks.common import Figure

SIZES = {
    "smoke": {"points": 2_000, "mlflow_points": 100, "runs": 50, "searches": 10},
    "full": {"points": 10_000, "mlflow_points": 10_000, "runs": 500, "searches": 30},
}
ROOT = Path(__file__).resolve().parent.parent

_MLFLOW_CHILD = r"""
import json, os, random, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
import mlflow
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
home, points, runs, searches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mlflow.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
client = MlflowClient()
exp = client.create_experiment("w1", artifact_location=f"{home}/art")
run = client.create_run(exp)
rid = run.info.run_id
t = time.perf_counter()
for i in range(points):
    client.log_metric(rid, "loss", 1.0 / (i + 1), step=i)
single = points / (time.perf_counter() - t)
now = int(time.time() * 1000)
metrics = [Metric("batch", float(i), now, i) for i in range(10_000)]
t = time.perf_counter()
for start in range(0, len(metrics), 1000):  # MLflow caps a batch at 1000 metrics
    client.log_batch(rid, metrics=metrics[start:start + 1000])
batch = len(metrics) / (time.perf_counter() - t)
client.log_batch(rid, params=[Param(f"p{i}", str(i)) for i in range(100)])
rng = random.Random(7)
for _ in range(runs):
    r = client.create_run(exp)
    client.log_batch(r.info.run_id, metrics=[Metric("auc", rng.random(), now, 0)])
times = []
for _ in range(searches):
    t = time.perf_counter()
    found = client.search_runs(
        [exp], "metrics.auc > 0.5", order_by=["metrics.auc DESC"], max_results=100
    )
    times.append((time.perf_counter() - t) * 1000)
median = statistics.median(times)
print(json.dumps({"single": single, "batch": batch, "search_ms": median, "found": len(found)}))
"""


def _mlflow(home: Path, size: dict[str, int]) -> dict[str, float] | None:
    python = ensure("mlflow")
    if python is None:
        return None
    script = home / "mlflow_child.py"
    script.write_text(_MLFLOW_CHILD)
    args = [str(size["mlflow_points"]), str(size["runs"]), str(size["searches"])]
    out = subprocess.run(
        [str(python), str(script), str(home), *args], capture_output=True, text=True, timeout=3000
    )
    if out.returncode != 0:
        print(f"# mlflow child failed: {out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _raw_sqlite(home: Path, points: int) -> float:
    conn = sqlite3.connect(home / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, run_id TEXT, key TEXT, value REAL,"
        " step INT, ts REAL)"
    )
    started = time.perf_counter()
    conn.execute("BEGIN")
    for i in range(points):
        conn.execute(
            "INSERT INTO m (run_id, key, value, step, ts) VALUES (?, ?, ?, ?, ?)",
            ("r", "loss", 1.0 / (i + 1), i, time.time()),
        )
    conn.execute("COMMIT")
    rate = points / (time.perf_counter() - started)
    conn.close()
    return rate


def _ghaf(home: Path, size: dict[str, int]) -> dict[str, float]:
    from ghaf.home import init_home
    from ghaf.settings import load_settings
    from ghaf.tracking import search_runs, start_run
    from ghaf.tracking.service import create_run, log_batch

    platform = init_home(load_settings(home=home / "ghaf"))
    points = size["points"]
    result: dict[str, float] = {}
    with start_run(platform=platform, experiment="w1", flush_interval=1.0) as run:
        started = time.perf_counter()
        for i in range(points):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        calls = time.perf_counter() - started
        run.flush()
        result["single"] = points / (time.perf_counter() - started)
        result["single_calls"] = points / calls
        batch = [("batch", float(i), i) for i in range(10_000)]
        started = time.perf_counter()
        run.log_batch(batch)
        result["batch"] = len(batch) / (time.perf_counter() - started)
        run.log_params({f"p{i}": i for i in range(100)})
    rng = random.Random(7)
    admin = platform.admin()
    for _ in range(size["runs"]):
        run_id = create_run(platform, admin, "w1-search")
        log_batch(platform, admin, run_id, metrics=[("auc", rng.random(), 0, time.time())])
    times = []
    for _ in range(size["searches"]):
        started = time.perf_counter()
        page = search_runs(
            platform,
            "metrics.auc > 0.5",
            experiments=["w1-search"],
            order_by=["metrics.auc desc"],
            max_results=100,
        )
        times.append((time.perf_counter() - started) * 1000)
    assert len(page.runs) == min(100, len(page.runs)) and page.runs
    result["search_ms"] = statistics.median(times)
    platform.close()
    return result


def run(size_name: str) -> list[Figure]:
    size = SIZES[size_name]
    with tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp:
        home = Path(tmp)
        raw = _raw_sqlite(home, size["points"])
        ours = _ghaf(home, size)
        anchor = _mlflow(home, size)
    mlflow_single = anchor["single"] if anchor else None
    mlflow_batch = anchor["batch"] if anchor else None
    mlflow_search = anchor["search_ms"] if anchor else None
    return [
        Figure("w1_single_points_per_s", ours["single"], "points/s", "raw sqlite3 1-txn", raw),
        Figure(
            "w1_single_points_per_s_vs_mlflow", ours["single"], "points/s", "mlflow", mlflow_single
        ),
        Figure("w1_single_call_rate", ours["single_calls"], "calls/s", "raw sqlite3 1-txn", raw),
        Figure(
            "w1_batch_points_per_s", ours["batch"], "points/s", "mlflow log_batch", mlflow_batch
        ),
        Figure(
            "w1_search_500_runs_ms",
            ours["search_ms"],
            "ms",
            "mlflow search_runs",
            mlflow_search,
            False,
        ),
    ]
