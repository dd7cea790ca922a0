"""Every guide embeds and links the rendered reports (rendered and checked in test_site.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: page -> the report it embeds (iframe) and links to.
EMBEDDED = {
    "docs/guides/monitoring.md": "drift.html",
    "docs/guides/gates.md": "evaluation.html",
    "docs/tracking-and-registry.md": "run-comparison.html",
}


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
