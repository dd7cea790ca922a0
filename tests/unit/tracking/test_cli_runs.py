"""``ghaf runs``: list, show and compare as a user types them, including bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ghaf.platform import Platform
from ghaf.tracking import start_run


def ghaf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )


def test_runs_list_show_compare(platform: Platform, tmp_path: Path) -> None:
    ids = []
    for lr in (0.1, 0.2):
        with start_run(f"lr-{lr}", platform=platform, experiment="fraud", params={"lr": lr}) as run:
            for step in range(5):
                run.log_metric("loss", lr / (step + 1))
            run.log_metric("auc", 0.9 + lr / 10)
        ids.append(run.run_id)
    out = ghaf("runs", "list", "--filter", "metrics.auc > 0.91", "--order-by", "metrics.auc desc")
    assert out.returncode == 0, out.stderr
    assert ids[1] in out.stdout and ids[0] not in out.stdout
    shown = ghaf("runs", "show", ids[0])
    assert shown.returncode == 0 and "lr" in shown.stdout and "finished" in shown.stdout
    page = tmp_path / "compare.html"
    out = ghaf("runs", "compare", *ids, "--html", str(page))
    assert out.returncode == 0, out.stderr
    text = page.read_text()
    assert "<svg" in text and "polyline" in text and "lr-0.1" in text


def test_runs_bad_input(platform: Platform) -> None:
    out = ghaf("runs", "list", "--filter", "params.lr = 1; DROP TABLE runs")
    assert out.returncode == 3 and "invalid filter" in out.stderr
    out = ghaf("runs", "show", "nope")
    assert out.returncode == 3
    out = ghaf("runs", "show", "0" * 32)
    assert out.returncode == 4
    out = ghaf("runs", "compare", "0" * 32)
    assert out.returncode == 3 and "at least two" in out.stderr


def test_reruns_with_one_name_each_keep_their_curve(platform: Platform) -> None:
    """Reruns of an experiment often share a name: each still gets its own curve, named
    with its id, rather than the last one hiding the others."""
    from ghaf.tracking.compare import compare_html

    ids = []
    for lr in (0.1, 0.2, 0.3):
        with start_run("nightly", platform=platform, experiment="fraud") as run:
            for step in range(3):
                run.log_metric("loss", lr / (step + 1))
        ids.append(run.run_id)
    page = compare_html(platform, ids)
    assert page.count("<polyline") == 3
    for run_id in ids:
        assert f"nightly ({run_id[:8]})" in page
