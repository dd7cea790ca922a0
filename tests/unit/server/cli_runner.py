"""``ghaf`` as a script runs it: a whole process, stdout a pipe (no terminal), no
``COLUMNS``, so tables are as wide as their widest value in both modes."""

from __future__ import annotations

import os
import subprocess
import sys


def ghaf(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``ghaf ARGS`` with this environment (less COLUMNS) plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, **(env or {})},
    )
