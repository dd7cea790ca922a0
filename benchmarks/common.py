"""Shared benchmark plumbing: the figure format, child processes with their peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its anchor measured in the same run."""

    name: str
    value: float
    unit: str
    anchor: str | None = None
    anchor_value: float | None = None
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        if self.anchor_value in (None, 0) or self.value is None:
            return None
        return round(self.value / self.anchor_value, 3)

    def to_json(self) -> str:
        body: dict[str, Any] = asdict(self)
        body["value"] = round(self.value, 3)
        if self.anchor_value is not None:
            body["anchor_value"] = round(self.anchor_value, 3)
        body["ratio"] = self.ratio
        return json.dumps(body)


def run_child(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[Any, float]:
    """Run ``python -m module args``; returns (its last stdout line as JSON, peak RSS MiB)."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{module} {args} exited {process.returncode}")
    lines = [line for line in output.splitlines() if line.strip()]
    return json.loads(lines[-1]), usage.ru_maxrss / 1024
