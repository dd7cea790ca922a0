"""The rendered reports the guides embed are the real ones, and every guide points at them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("docs_reports", ROOT / "scripts/docs_reports.py")
assert SPEC is not None and SPEC.loader is not None
docs_reports = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(docs_reports)

#: page -> the report it embeds (iframe) and links to.
EMBEDDED = {
    "docs/guides/monitoring.md": "drift.html",
    "docs/guides/gates.md": "evaluation.html",
    "docs/tracking-and-registry.md": "run-comparison.html",
}


@pytest.mark.slow
def test_the_scenario_renders_each_report_from_its_own_data(tmp_path: Path) -> None:
    written = docs_reports.render(tmp_path)
    assert [p.name for p in written] == list(docs_reports.REPORTS)
    page = {p.name: p.read_text(encoding="utf-8") for p in written}
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


def test_the_guides_embed_and_link_the_reports() -> None:
    for page, report in EMBEDDED.items():
        text = (ROOT / page).read_text(encoding="utf-8")
        assert re.search(rf'<iframe src="(\.\./)+reports/{report}"', text), page
        assert re.search(rf"\]\((\.\./)?reports/{report}\)", text), page
    registry = (ROOT / "docs/tracking-and-registry.md").read_text(encoding="utf-8")
    assert '<iframe src="../reports/model-card.html"' in registry


def test_the_site_build_renders_them_first() -> None:
    """mkdocs.yml runs the script as a hook, so no build has links to missing reports."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s+- scripts/docs_reports\.py", config, re.MULTILINE)
    assert "docs/reports/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
