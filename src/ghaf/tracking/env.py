"""The environment a run ran in: Python, packages, hardware, git commit (captured once).

The git commit comes from running `git` with fixed arguments and no shell.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess  # nosec B404
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def _git_commit(cwd: Path) -> dict[str, Any] | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        commit = subprocess.run(  # nosec B603
            [git, "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(  # nosec B603
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def _hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or None,
    }
    try:
        import psutil

        info["memory_bytes"] = int(psutil.virtual_memory().total)
    except ImportError:  # pragma: no cover - psutil is a core dependency
        pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


@functools.cache
def capture_environment() -> dict[str, Any]:
    """Python, OS, installed packages, hardware and the git commit of the working directory.

    Cached: a process's environment does not change between its runs.
    """
    packages = {
        (dist.metadata["Name"] or "").lower(): dist.version for dist in metadata.distributions()
    }
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "packages": dict(sorted(packages.items())),
        "hardware": _hardware(),
        "git": _git_commit(Path.cwd()),
        "argv": list(sys.argv[:8]),
    }
