"""``python -m benchmarks --size smoke|full [--only NAME]``: one JSON line per figure."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

SUITES: tuple[str, ...] = (
    "cli_startup",
    "artifacts",
    "encryption",
    "serving",
    "gpu",
    "training",
    "training_ray",
    "features",
    "drift",
    "tracking",
    "control_plane",
    "server_artifacts",
    "contracts",
    "ingest",
    "streams",
    "experiments_stats",
    "experiment_overhead",
    "monitoring_cost",
    "join_ray",
    "serving_ray",
    "batch_ray",
    "ui_speed",
)
"""Benchmark modules under ``benchmarks/``, each with ``run(size) -> list[Figure]``."""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--size", choices=("smoke", "full"), default="full")
    parser.add_argument("--only", action="append", help="run only these suites")
    args = parser.parse_args()
    selected = [name for name in SUITES if not args.only or name in args.only]
    if len(selected) > 1:
        # One process per suite: Linux carries a parent's peak RSS into every child it
        # forks (exec records the old hiwater mark), so a suite that grew this process
        # would inflate the peak-RSS figures of every suite measured after it.
        failed = 0
        for name in selected:
            command = [sys.executable, "-m", "benchmarks", "--size", args.size, "--only", name]
            failed += subprocess.run(command, check=False).returncode != 0
        return 1 if failed else 0
    failed = 0
    for name in selected:
        module = importlib.import_module(f"benchmarks.{name}")
        try:
            for figure in module.run(args.size):
                print(figure.to_json(), flush=True)
        except Exception as exc:
            print(f'{{"name": "{name}", "error": "{type(exc).__name__}: {exc}"}}', flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
