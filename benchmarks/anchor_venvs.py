"""The anchors' own virtual environments (``.bench/venvs/NAME``), pinned, made once.

Each anchor (MLflow, pandera, Great Expectations, Evidently, NannyML, Feast, KServe,
BentoML) runs in a venv of its own so that its dependencies never meet Ghaf's. A venv is
ready when its marker holds exactly its pins; a lock per venv lets a test, a benchmark
and ``python -m benchmarks.anchor_venvs NAME...`` (which CI starts in the background
while it lints, so the downloads overlap work that leaves a core idle) ask for the same
venv at once: one builds it, the others wait for it. Standard library only: CI runs this
module with the base interpreter before the project's venv exists.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".bench" / "venvs"
MLFLOW_PIN = "mlflow==3.17.2"
PINS: dict[str, tuple[str, ...]] = {
    "mlflow": (
        MLFLOW_PIN,
        "scikit-learn==1.9.1",
        "lightgbm==4.7.0",
        "xgboost-cpu==3.2.0",
        "onnx==1.23.2",
        "skl2onnx==1.20.0",
        "onnxruntime==1.32.0",
    ),
    "pandera": ("pandera==0.35.0", "pandas==3.1.1", "pyarrow==26.0.1"),
    "gx": ("great_expectations==1.24.1", "pyarrow==26.0.1"),
    "evidently": ("evidently==0.7.23", "pandas==2.2.3"),
    "nannyml": ("nannyml==0.13.1", "statsmodels==0.14.5", "pandas==2.2.3"),
    "feast": ("feast[duckdb]==0.67.0",),
    "kserve": ("kserve==0.21.0", "scikit-learn==1.9.1", "skops==0.16.0"),
    "bentoml": ("bentoml==1.4.40", "scikit-learn==1.9.1", "skops==0.16.0"),
}
"""Every anchor venv and its exact pins."""
SMOKE = ("mlflow", "pandera", "gx")
"""The venvs that ``make test`` and ``make bench-smoke`` use (CI prepares these)."""
INSTALL_TIMEOUT_S = 1800


def ensure(name: str, python: str = sys.executable) -> Path | None:
    """The venv's interpreter, made with its pins when missing or stale; None (with a note
    on stderr) when it cannot be made here. Waits while another process makes it."""
    pins = PINS[name]
    venv = VENVS / name
    interpreter = venv / "bin" / "python"
    marker = venv / ".ghaf-pins"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == "\n".join(pins):
            return interpreter
        try:
            if not interpreter.exists():
                subprocess.run([python, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(interpreter), "-m", "pip", "install", "-q", *pins],
                check=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"# {name}: its venv could not be made in {venv}: {exc}", file=sys.stderr)
            return None
        marker.write_text("\n".join(pins))
    return interpreter


def prepare(names: Sequence[str]) -> dict[str, float | None]:
    """Make ``names`` side by side; seconds each took, None where one could not be made."""

    def timed(name: str) -> float | None:
        started = time.perf_counter()
        return None if ensure(name) is None else time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        return dict(zip(names, pool.map(timed, names), strict=True))


def main(argv: Sequence[str]) -> int:
    names = list(argv) or list(SMOKE)
    unknown = sorted(set(names) - set(PINS))
    if unknown:
        print(f"unknown anchor venv(s) {unknown}: choose from {sorted(PINS)}", file=sys.stderr)
        return 2
    for name, seconds in prepare(names).items():
        print(
            f"{name}: " + ("could not be made" if seconds is None else f"ready in {seconds:.0f} s")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
