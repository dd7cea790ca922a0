"""CLI startup: whole ``ghaf`` processes, median wall seconds, beside an anchor in the same run.

Figures: ``ghaf --help``, ``ghaf models --help`` and ``ghaf models list`` on a fresh home
(``ghaf init`` first, not timed), and ``ghaf models list`` against a running ``ghaf
server`` (remote mode: ``GHAF_URL`` and a token, no home on the client). Anchor:
``mlflow --help`` when an MLflow is installed (``.venv`` or the tracking benchmark's
``.bench/venvs/mlflow``), else ``python -c pass``, the floor of any Python CLI. Targets on
a 2-core machine: ``--help`` < 0.3 s, ``models list`` < 0.5 s in both modes.

``ghaf predict`` as a user runs it (issue 22): one whole process scores W6 (1M rows at
full size, Parquet to Parquet, the W4 model signed by the bench home's key), start-up,
verification and model loading included, against in-memory ``predict_proba`` on the same
rows in the same run (all cores, the median of as many calls). Target: ratio >= 0.8.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure
from benchmarks.control_plane import ghaf_server

ROOT = Path(__file__).resolve().parent.parent
RUNS = {"smoke": 1, "full": 10}  # smoke: CI checks it runs, not the figure
PREDICT = {"smoke": (2_000, 1), "full": (1_000_000, 5)}
"""W6 rows scored by ``ghaf predict``, and the number of whole processes timed."""
MLFLOW_CANDIDATES = (
    Path(sys.executable).parent / "mlflow",
    ROOT / ".bench" / "venvs" / "mlflow" / "bin" / "mlflow",
)


def _ghaf() -> list[str]:
    script = Path(sys.executable).parent / "ghaf"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ghaf"]


def _median_seconds(command: list[str], runs: int, env: dict[str, str]) -> float:
    """Median wall time of ``runs`` whole processes (one untimed run first warms the disk)."""
    times = []
    for index in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, env=env, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{command[:4]} exited {done.returncode}: {tail}")
        if index:
            times.append(elapsed)
    return statistics.median(times)


def bench_predict(size_name: str, workdir: Path) -> list[Figure]:
    """``ghaf predict`` (whole processes) on W6 against in-memory ``predict_proba``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import make_classification
    from threadpoolctl import threadpool_limits

    from benchmarks._serving_apps import home_of
    from benchmarks.serving import train_w4

    rows, runs = PREDICT[size_name]
    model, _, model_dir = train_w4(workdir, 20_000 if size_name == "full" else 5_000)
    x, _ = make_classification(n_samples=rows, n_features=20, random_state=7)
    x = x.astype(np.float32)
    columns = [f"f{i}" for i in range(20)]
    source = workdir / "w6.parquet"
    pq.write_table(
        pa.table({c: x[:, i] for i, c in enumerate(columns)}), source, row_group_size=65_536
    )
    memory = []
    with threadpool_limits(limits=os.cpu_count() or 1):
        for _ in range(runs):
            started = time.perf_counter()
            model.predict_proba(x)
            memory.append(time.perf_counter() - started)
    env = {**os.environ, "GHAF_HOME": str(home_of(model_dir)), "NO_COLOR": "1"}
    output = workdir / "w6-scored.parquet"
    command = [*_ghaf(), "predict", "--flavor", "skops", str(model_dir), str(source), str(output)]
    seconds = _median_seconds(command, runs, env)
    assert pq.ParquetFile(output).metadata.num_rows == rows
    return [
        Figure(
            "W6 rows/s ghaf predict (whole process)",
            rows / seconds,
            "rows/s",
            anchor="in-memory predict_proba",
            anchor_value=rows / statistics.median(memory),
        )
    ]


def _anchor() -> tuple[str, list[str]]:
    for mlflow in MLFLOW_CANDIDATES:
        if mlflow.exists():
            return "mlflow --help", [str(mlflow), "--help"]
    return "python -c pass", [sys.executable, "-c", "pass"]


def run(size_name: str) -> list[Figure]:
    runs = RUNS[size_name]
    ghaf = _ghaf()
    home = Path(tempfile.mkdtemp(prefix="ghaf-bench-cli-"))
    try:
        env = {**os.environ, "GHAF_HOME": str(home / "home"), "COLUMNS": "120", "NO_COLOR": "1"}
        subprocess.run([*ghaf, "init"], capture_output=True, env=env, check=True)
        anchor_name, anchor_command = _anchor()
        anchor = _median_seconds(anchor_command, runs, env)
        figures = []
        for name, args in (
            ("cli_help_seconds", ["--help"]),
            ("cli_models_help_seconds", ["models", "--help"]),
            ("cli_models_list_seconds", ["models", "list"]),
        ):
            figures.append(
                Figure(
                    name,
                    _median_seconds([*ghaf, *args], runs, env),
                    "s",
                    anchor=anchor_name,
                    anchor_value=anchor,
                    higher_is_better=False,
                )
            )
        with ghaf_server(home / "served", None) as (url, token, _pid):
            client_env = {k: v for k, v in env.items() if not k.startswith("GHAF_")}
            client_env.update({"GHAF_URL": url, "GHAF_TOKEN": token})
            client_env["GHAF_HOME"] = str(home / "client")  # empty: nothing local is read
            figures.append(
                Figure(
                    "cli_remote_models_list_seconds",
                    _median_seconds([*ghaf, "models", "list"], runs, client_env),
                    "s",
                    anchor=anchor_name,
                    anchor_value=anchor,
                    higher_is_better=False,
                )
            )
        return figures + bench_predict(size_name, home / "predict")
    finally:
        shutil.rmtree(home, ignore_errors=True)
