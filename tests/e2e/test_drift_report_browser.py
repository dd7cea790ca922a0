"""The W5 drift report opened in headless Chromium: under 2 MB, and every chart drew."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ghaf.monitoring import build_profile, compare_profiles
from ghaf.monitoring.report_html import render_html
from tests.conftest import service_missing
from tests.unit.monitoring.w5 import w5_tables

CHROMIUM = "/usr/bin/chromium"


def _browser_or_skip() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright")
    if missing:
        service_missing(
            " and ".join(missing), "not installed", "scripts/install_browser.sh installs them"
        )


@pytest.mark.slow
def test_w5_report_renders_in_chromium(tmp_path: Path) -> None:
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    reference, current = w5_tables(seed=7)
    report = compare_profiles(build_profile(reference), build_profile(current))
    page_path = tmp_path / "w5.html"
    page_path.write_text(render_html(report), encoding="utf-8")
    assert page_path.stat().st_size < 2_000_000
    shot = tmp_path / "w5.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.goto(page_path.as_uri())
            page.screenshot(path=str(shot), full_page=True)
            charts = page.locator("svg.chart")
            assert charts.count() == len(report.columns) + 1  # one per column + domain drivers
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 40
            # Histogram outlines and category bars have real geometry.
            lengths = page.eval_on_selector_all(
                "svg.chart path", "els => els.map(e => e.getTotalLength())"
            )
            assert len(lengths) == 2 * 20 and min(lengths) > 100
            widths = page.eval_on_selector_all(
                "svg.chart rect", "els => els.map(e => e.getBBox().width)"
            )
            assert len(widths) >= 5 * 2 * 10 and max(widths) > 100
            assert page.locator("tbody tr").count() == 25
            page.check("#only-drift")
            visible = page.eval_on_selector_all(
                "tbody tr", "rows => rows.filter(r => r.offsetParent !== null).length"
            )
            assert visible == 6
        finally:
            browser.close()
    assert shot.stat().st_size > 50_000
    if keep := os.environ.get("GHAF_TEST_SCREENSHOTS"):
        shutil.copy(shot, Path(keep) / "drift_report_w5.png")
