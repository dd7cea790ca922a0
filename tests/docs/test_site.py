"""The documentation site builds with MkDocs in strict mode: no warning, no broken link."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_site_builds_strict_with_the_generated_references(tmp_path: Path) -> None:
    missing = [m for m in ("mkdocs", "material", "mkdocstrings") if not importlib.util.find_spec(m)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; `make docs` installs ghaf[docs]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAF_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    for page in ("getting-started/tutorial", "concepts", "guides/operations", "reference/cli"):
        assert (site / page / "index.html").is_file(), page
    settings = (site / "reference/settings/index.html").read_text(encoding="utf-8")
    assert "GHAF_TLS__ALLOW_PLAIN_HTTP" in settings
    document = json.loads((site / "reference/openapi.json").read_text(encoding="utf-8"))
    assert document["paths"]["/api/v1/projects"]["get"]["x-ghaf-action"] == "project.read"
    python_api = (site / "reference/python/index.html").read_text(encoding="utf-8")
    assert "register_model" in python_api and "get_historical_features" in python_api
