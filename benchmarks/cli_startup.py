"""CLI startup: whole ``ghaf`` processes, median wall seconds, beside an anchor in the same run.

Figures: ``ghaf --help``, ``ghaf models --help`` and ``ghaf models list`` on a fresh home
(``ghaf init`` first, not timed), and ``ghaf models list`` against a running ``ghaf
server`` (remote mode: ``GHAF_URL`` and a token, no home on the client). Anchor:
``mlflow --help`` when an MLflow is installed (``.venv`` or the tracking benchmark's
``.bench/venvs/mlflow``), else ``python -c pass``, the floor of any Python CLI. Targets on
a 2-core machine: ``--help`` < 0.3 s, ``models list`` < 0.5 s in both modes.
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
        return figures
    finally:
        shutil.rmtree(home, ignore_errors=True)
