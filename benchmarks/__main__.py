"""``python -m benchmarks --size smoke|full [--only NAME]``: one JSON line per figure."""

from __future__ import annotations

import argparse
import importlib
import sys

SUITES: tuple[str, ...] = (
    "artifacts",
    "encryption",
    "serving",
    "gpu",
    "training",
    "features",
    "drift",
    "tracking",
    "contracts",
    "ingest",
)
"""Benchmark modules under ``benchmarks/``, each with ``run(size) -> list[Figure]``."""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--size", choices=("smoke", "full"), default="full")
    parser.add_argument("--only", action="append", help="run only these suites")
    args = parser.parse_args()
    failed = 0
    for name in SUITES:
        if args.only and name not in args.only:
            continue
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
