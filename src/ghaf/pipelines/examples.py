"""Small example pipelines (importable by workers anywhere): docs, CLI checks and tests.

``ghaf pipelines run ghaf.pipelines.examples:numbers`` runs one.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from ghaf.pipelines.context import current_step
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.step import step


@step
def make_table(rows: int, seed: int) -> pa.Table:
    """A seeded table of ``rows`` random values."""
    rng = np.random.default_rng(seed)
    return pa.table({"x": rng.normal(size=rows), "g": rng.integers(0, 3, rows)})


@step
def column_sum(table: pa.Table) -> dict[str, float]:
    """The sum of column x."""
    return {"sum": float(np.sum(table["x"].to_numpy()))}


@step
def column_stats(table: pa.Table) -> np.ndarray:
    """Mean and sd of x per group, as an array."""
    x, g = table["x"].to_numpy(), table["g"].to_numpy()
    return np.array([[x[g == k].mean(), x[g == k].std()] for k in range(3)])


@step
def write_report(total: dict[str, float], stats: np.ndarray, workdir: Path) -> Path:
    """A directory output: a small report and the stats beside it."""
    (workdir / "report.txt").write_text(f"sum={total['sum']:.6f}\n")
    np.save(workdir / "stats.npy", stats)
    return workdir


@step(retries=2, backoff_s=0.05)
def flaky(marker_dir: str, failures: int) -> str:
    """Fails ``failures`` times (counted by files in ``marker_dir``), then succeeds."""
    directory = Path(marker_dir)
    directory.mkdir(parents=True, exist_ok=True)
    seen = len(list(directory.glob("attempt-*")))
    (directory / f"attempt-{seen + 1}").touch()
    if seen < failures:
        raise RuntimeError(f"flaky failure {seen + 1}")
    return f"ok after {seen + 1} attempts"


@step(retries=1, backoff_s=0.05, cache=False)
def slow(marker_dir: str, seconds: float) -> str:
    """Writes its pid to ``marker_dir``/pid-N, sleeps, returns; a killed first attempt retries."""
    directory = Path(marker_dir)
    directory.mkdir(parents=True, exist_ok=True)
    count = len(list(directory.glob("pid-*")))
    (directory / f"pid-{count + 1}").write_text(str(os.getpid()))
    print(f"slow step attempt {count + 1} sleeping {seconds}s", flush=True)
    time.sleep(seconds)
    return "slept"


@step(cache=False)
def where(tag: int, seconds: float, meet_dir: str = "", peers: int = 1) -> dict[str, str]:
    """The Ray node id (``local`` outside Ray) and pid this step ran on: placement checks.

    Holds its CPU until ``peers`` steps (itself included) have checked in under
    ``meet_dir``, for at most ``seconds`` (without ``meet_dir`` it just sleeps that
    long). Steps submitted together then overlap whenever the cluster can run them at
    once, however slowly a node starts its workers, so where they ran shows placement.
    """
    deadline = time.monotonic() + seconds
    if meet_dir:
        directory = Path(meet_dir)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"step-{tag}").write_text(str(os.getpid()))
        while len(list(directory.glob("step-*"))) < peers and time.monotonic() < deadline:
            time.sleep(0.05)
    else:
        time.sleep(seconds)
    node = "local"
    try:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return {"tag": str(tag), "node": node, "pid": str(os.getpid())}


@step(cache=False)
def whoami() -> dict[str, str]:
    """Who this step acts as, its run and step run, and the home it opened."""
    context = current_step()
    return {
        "actor": context.actor.name,
        "run": context.run_id,
        "step_run": context.step_run_id,
        "home": str(context.platform.settings.home),
    }


@step(timeout_s=0.5)
def too_slow(seconds: float) -> str:
    """Runs over its timeout."""
    time.sleep(seconds)
    return "never"


def numbers(rows: int = 1000) -> Pipeline:
    """make_table -> (column_sum, column_stats in parallel) -> write_report."""
    pipeline = Pipeline("numbers", "a seeded table, two independent summaries, a report")
    table = pipeline.add(make_table, rows=pipeline.param("rows", rows), seed=7)
    total = pipeline.add(column_sum, table=table)
    stats = pipeline.add(column_stats, table=table)
    pipeline.add(write_report, total=total, stats=stats)
    return pipeline


def placement(seconds: float = 2.0, meet_dir: str = "") -> Pipeline:
    """Two independent ``where`` steps: on a cluster of two one-CPU nodes, one runs on each.

    With ``meet_dir`` each holds its CPU until both started (at most ``seconds``)."""
    pipeline = Pipeline("placement", "where two overlapping steps ran")
    pause = pipeline.param("seconds", seconds)
    meet = pipeline.param("meet_dir", meet_dir)
    for tag in (1, 2):
        pipeline.add(where, name=f"where_{tag}", tag=tag, seconds=pause, meet_dir=meet, peers=2)
    return pipeline


def sleepy(marker_dir: str | None = None, seconds: float = 60.0) -> Pipeline:
    """make_table -> a slow step (for cancellation checks)."""
    marker_dir = marker_dir or str(Path(tempfile.gettempdir()) / "ghaf-sleepy")
    pipeline = Pipeline("sleepy", "a table, then a long sleep")
    pipeline.add(make_table, rows=10, seed=1)
    pipeline.add(
        slow,
        marker_dir=pipeline.param("marker_dir", marker_dir),
        seconds=pipeline.param("seconds", seconds),
    )
    return pipeline
