"""The top-level package exports a pinned handful of names, each importable."""

from __future__ import annotations

import subprocess
import sys

import ghaf


def test_exported_members() -> None:
    assert sorted(ghaf.__all__) == [
        "Actor",
        "GhafSettings",
        "Platform",
        "connect",
        "load_model",
        "load_settings",
        "start_run",
    ]
    for name in ghaf.__all__:
        assert getattr(ghaf, name) is not None


def test_importing_a_concern_does_not_load_the_model_flavors() -> None:
    code = "import sys, ghaf.settings; print('ghaf.models' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
