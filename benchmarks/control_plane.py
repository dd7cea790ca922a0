"""W7 (part): the control plane. A remote client logs single-call metric points through
``ghaf server`` (HTTP on loopback, PostgreSQL when one listens on 127.0.0.1:5432, else
SQLite), made durable by run end; then searches runs through the API. The anchor is the
MLflow tracking server (``mlflow server``, SQLite) with the same client pattern, in the
same run.

The search runs over ``runs`` runs x 20 metrics (100,000 at full size). The 1 GiB
artifact up and down is ``server_artifacts``.
"""

from __future__ import annotations

import datetime
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.anchor_venvs import ensure
from benchmarks.common import Figure

SIZES = {
    "smoke": {"points": 5_000, "mlflow_points": 50, "runs": 1_000, "searches": 20},
    "full": {"points": 100_000, "mlflow_points": 1_000, "runs": 100_000, "searches": 100},
}
PG_ADMIN_URL = os.environ.get(
    "GHAF_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

_MLFLOW_CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
from mlflow.tracking import MlflowClient
url, points = sys.argv[1], int(sys.argv[2])
client = MlflowClient(tracking_uri=url)
exp = client.create_experiment(f"w7-{time.time_ns()}")
t = time.perf_counter()
run = client.create_run(exp)
for i in range(points):
    client.log_metric(run.info.run_id, "loss", 1.0 / (i + 1), step=i)
client.set_terminated(run.info.run_id)
print(json.dumps({"single": points / (time.perf_counter() - t)}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy in {timeout} s")


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database when one listens on loopback, else None (SQLite)."""
    with socket.socket() as sock:
        sock.settimeout(1)
        if sock.connect_ex(("127.0.0.1", 5432)) != 0:
            yield None
            return
    from sqlalchemy import create_engine, text

    name = f"ghaf_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def ghaf_server(home: Path, metadata_url: str | None) -> Iterator[tuple[str, str, int]]:
    """``ghaf server`` on a fresh home; (URL, a data scientist's token in project w7, the
    server's process id)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAF_")}
    env["GHAF_HOME"] = str(home)
    if metadata_url:
        env["GHAF_METADATA_URL"] = metadata_url
    ghaf = [sys.executable, "-m", "ghaf"]

    def call(*args: str) -> str:
        done = subprocess.run([*ghaf, *args], env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    call("init")
    call("projects", "create", "w7")
    call("roles", "bind", "bench", "data_scientist", "--project", "w7")
    token = call("tokens", "create", "bench", "--project", "w7")
    port = _free_port()
    process = subprocess.Popen(
        [*ghaf, "server", "--port", str(port), "--rate", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url, token, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def _remote_points(url: str, token: str, points: int) -> float:
    """Single-call points/s from the first call to ``end()`` returning (all durable)."""
    code = (
        "import json, sys, time, ghaf\n"
        "c = ghaf.connect(sys.argv[1], token=sys.argv[2])\n"
        "n = int(sys.argv[3])\n"
        "t = time.perf_counter()\n"
        "run = c.start_run('w7', project='w7')\n"
        "for i in range(n):\n"
        "    run.log_metric('loss', 1.0 / (i + 1), step=i)\n"
        "run.end()\n"
        "rate = n / (time.perf_counter() - t)\n"
        "assert c.get_run(run.run_id)['metrics']['loss'] == 1.0 / n\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'torch', 'duckdb', 'sqlalchemy'))\n"
        "print(json.dumps({'single': rate, 'heavy': heavy}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, url, token, str(points)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    if result["heavy"]:
        raise RuntimeError(f"the remote client imported {result['heavy']}")
    return float(result["single"])


def _analyze(metadata_url: str | None) -> None:
    """What autovacuum does within a minute of a bulk load: fresh planner statistics.

    Searched right after thousands of inserts, PostgreSQL still plans with the empty
    tables' estimates (one row each) and picks a nested loop that rescans the metrics
    once per run: 230 ms instead of 4 ms at 2,000 runs.
    """
    if metadata_url is None:
        return
    from sqlalchemy import create_engine

    engine = create_engine(metadata_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def _seed_runs(metadata_url: str, experiment: str, runs: int, metrics: int) -> None:
    """Load ``runs`` finished runs of ``experiment`` with ``metrics`` metrics each (their
    latest values, as search reads them), 2 params and a tag, straight into the tables.

    The searches are what is measured; making 100,000 runs through the API would take
    longer than the whole suite, and every row is what a run logged through it leaves.
    """
    from sqlalchemy import create_engine, insert, select

    from ghaf.tracking.tables import ExperimentRow, LatestMetricRow, RunParamRow, RunRow, RunTagRow

    engine = create_engine(metadata_url)
    started = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    with engine.begin() as conn:
        experiment_id = conn.execute(
            select(ExperimentRow.id).where(ExperimentRow.name == experiment)
        ).scalar_one()
        for first in range(0, runs, 5_000):
            batch = range(first, min(first + 5_000, runs))
            ids = [f"{i:032x}" for i in batch]
            conn.execute(
                insert(RunRow),
                [
                    {
                        "id": run_id,
                        "experiment_id": experiment_id,
                        "parent_run_id": None,
                        "name": f"run-{i}",
                        "status": "finished",
                        "user": "bench",
                        "project": "w7",
                        "start_time": started + datetime.timedelta(seconds=i),
                        "end_time": started + datetime.timedelta(seconds=i + 1),
                        "env": "{}",
                    }
                    for i, run_id in zip(batch, ids, strict=True)
                ],
            )
            conn.execute(
                insert(LatestMetricRow),
                [
                    {
                        "run_id": run_id,
                        "key": f"m{k}",
                        "value": ((i * 7919 + k * 104729) % 100_000) / 100_000,
                        "step": 9,
                        "ts": 0.0,
                        "min_value": 0.0,
                        "max_value": 1.0,
                    }
                    for i, run_id in zip(batch, ids, strict=True)
                    for k in range(metrics)
                ],
            )
            conn.execute(
                insert(RunParamRow),
                [
                    {"run_id": run_id, "key": key, "value": value}
                    for i, run_id in zip(batch, ids, strict=True)
                    for key, value in (("lr", f"{(i % 10) / 100:.2f}"), ("depth", str(i % 12)))
                ],
            )
            conn.execute(
                insert(RunTagRow),
                [
                    {"run_id": run_id, "key": "team", "value": ("a", "b", "c")[i % 3]}
                    for i, run_id in zip(batch, ids, strict=True)
                ],
            )
    engine.dispose()


SEARCHES = (
    {"filter": "metrics.m3 > 0.5", "order_by": "metrics.m3 desc"},
    {"filter": "params.lr = '0.05' and metrics.m1 > 0.9", "order_by": "metrics.m1 desc"},
    {"filter": "tags.team = 'b' and metrics.m7 < 0.01"},
    {},
)
"""What people search runs by: a metric threshold sorted by it, a param and a metric, a
tag and a metric, and the newest runs."""


def _search_p95(url: str, token: str, runs: int, searches: int, metadata_url: str) -> float:
    """p95 ms of the API's run search over ``runs`` runs x 20 metrics (each query shape of
    :data:`SEARCHES` in turn, 100 results a page)."""
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=60) as client:
        made = client.post("/experiments", json={"name": "w7-search", "project": "w7"})
        made.raise_for_status()
        _seed_runs(metadata_url, "w7-search", runs, 20)
        _analyze(metadata_url)
        times = []
        for i in range(searches):
            query = SEARCHES[i % len(SEARCHES)]
            started = time.perf_counter()
            page = client.get("/runs", params={**query, "max_results": 100})
            times.append((time.perf_counter() - started) * 1000)
            assert page.status_code == 200 and page.json()["runs"], (query, page.text[:300])
    return statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]


def _mlflow_server(home: Path, points: int) -> float | None:
    python = ensure("mlflow")
    if python is None:
        return None
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    mlflow = python.parent / "mlflow"
    process = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{home}/mlflow.db",
            "--default-artifact-root",
            str(home / "mlruns"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, timeout=300)
        script = home / "mlflow_w7.py"
        script.write_text(_MLFLOW_CHILD)
        out = subprocess.run(
            [str(python), str(script), url, str(points)],
            capture_output=True,
            text=True,
            timeout=3000,
        )
        if out.returncode != 0:
            print(f"# mlflow client failed: {out.stderr[-2000:]}", file=sys.stderr)
            return None
        return float(__import__("json").loads(out.stdout.strip().splitlines()[-1])["single"])
    finally:
        process.terminate()
        process.wait(timeout=60)


def run(size_name: str) -> list[Figure]:
    size = SIZES[size_name]
    with tempfile.TemporaryDirectory(dir=os.environ.get("GHAF_BENCH_DIR")) as tmp:
        home = Path(tmp)
        with postgres_database() as pg, ghaf_server(home / "ghaf", pg) as (url, token, _):
            single = _remote_points(url, token, size["points"])
            search = _search_p95(
                url, token, size["runs"], size["searches"], pg or f"sqlite:///{home}/ghaf/ghaf.db"
            )
        backend = "postgresql" if pg else "sqlite"
        anchor = _mlflow_server(home / "mlflow", size["mlflow_points"])
    return [
        Figure(
            f"w7_remote_single_points_per_s_{backend}",
            single,
            "points/s",
            "mlflow server log_metric",
            anchor,
        ),
        Figure(
            f"w7_search_p95_ms_{size['runs']}_runs_{backend}",
            search,
            "ms",
            None,
            None,
            higher_is_better=False,
        ),
    ]
