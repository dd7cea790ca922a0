"""The documentation site builds with MkDocs in strict mode: no warning, no broken link;
the reports it embeds are rendered from their scenario's own data (rendered once, checked,
and built into the site)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("docs_reports", ROOT / "scripts/docs_reports.py")
assert SPEC is not None and SPEC.loader is not None
docs_reports = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(docs_reports)
pytestmark = pytest.mark.slow
Built = tuple[Path, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def build(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The reports rendered once, then the site built strict with them (the hook takes
    them from ``DOCS_REPORTS_DIR`` instead of rendering them again)."""
    missing = [m for m in ("mkdocs", "material", "mkdocstrings") if not importlib.util.find_spec(m)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; `make docs` installs ghaf[docs]")
    root = tmp_path_factory.mktemp("docs-site")
    written = docs_reports.render(root / "reports")
    assert [p.name for p in written] == list(docs_reports.REPORTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAF_")}
    env |= {"NO_MKDOCS_2_WARNING": "1", "DOCS_REPORTS_DIR": str(root / "reports")}
    site = root / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return site, result


def test_site_builds_strict_with_the_generated_references(
    build: Built,
) -> None:
    site, result = build
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


def test_the_scenario_renders_each_report_from_its_own_data(
    build: Built,
) -> None:
    site, result = build
    assert result.returncode == 0, result.stdout + result.stderr
    page = {n: (site / "reports" / n).read_text(encoding="utf-8") for n in docs_reports.REPORTS}
    # The current month's amounts grew and its channel mix moved: both columns drift,
    # the hour of day (drawn alike) does not.
    drift = page["drift.html"]
    assert "Drift report: current.parquet vs reference.parquet" in drift
    assert drift.count('class="badge b-drift"') >= 2 and 'class="badge b-ok"' in drift
    evaluation = page["evaluation.html"]
    assert all(h in evaluation for h in ("Metrics (classification)", "Fairness", "Champion"))
    # One curve per run and metric, each named after its run.
    comparison = page["run-comparison.html"]
    assert len(re.findall(r"<polyline", comparison)) == 4
    assert comparison.count("<title>logreg-C0.01</title>") == 2
    card = page["model-card.html"]
    assert "Model card: fraud v1" in card and "Files signed: yes" in card
    assert "<td>amount</td>" in card  # the input signature from the registered example
