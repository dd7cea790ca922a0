"""Shared benchmark plumbing: the figure format, child processes with their peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
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
    limit: float | None = None
    """The acceptance limit the value must stay within (shown only when set)."""
    note: str | None = None
    """How it was measured, where the name cannot say (shown only when set)."""

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
        for optional in ("limit", "note"):
            if body[optional] is None:
                del body[optional]
        return json.dumps(body)


def run_command(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    quiet_stderr: bool = False,
) -> tuple[Any, float]:
    """Run ``command``; returns (its last JSON stdout line, its peak RSS in MiB).

    The peak RSS comes from ``os.wait4`` for this child alone. With ``quiet_stderr`` the
    child's stderr (progress bars) is kept aside and shown only if it fails.
    """
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=errors if quiet_stderr else None,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            text=True,
        )
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read()[-2000:]
            raise RuntimeError(f"{command[:3]} exited {process.returncode}: {tail}")
    lines = [line for line in output.splitlines() if line.strip().startswith(("{", "["))]
    return json.loads(lines[-1]), usage.ru_maxrss / 1024


def run_child(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[Any, float]:
    """Run ``python -m module args``; returns (its last stdout line as JSON, peak RSS MiB)."""
    return run_command([sys.executable, "-m", module, *args], env=env)


def ray_loopback_env(workdir: Path) -> dict[str, str]:
    """The environment a benchmark's own Ray clusters and driver share, set in
    ``os.environ`` before Ray is imported (it reads these once): a fresh auth token in
    ``workdir`` (token mode), everything on loopback, no usage reporting."""
    import secrets

    token = workdir / "ray_auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    os.environ.update(env)
    return env
