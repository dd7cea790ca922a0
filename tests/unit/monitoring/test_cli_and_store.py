"""`ghaf monitor` as a user types it, stored profiles, and the smaller checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.monitoring import build_profile, check_quality, compare_profiles, profile_window
from ghaf.monitoring.prediction import label_rate_drift, score_drift
from ghaf.monitoring.report_html import render_html
from ghaf.monitoring.store import load_profile, save_profile
from ghaf.monitoring.streaming import MetricMonitor, detect_changes
from ghaf.monitoring.tables import ReferenceProfileRow
from ghaf.platform import Platform
from tests.unit.monitoring.w5 import w5_tables


def ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def w5_paths(tmp_path: Path) -> tuple[Path, Path]:
    ref, cur = w5_tables(seed=7, rows=20_000)
    paths = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    pq.write_table(ref, paths[0])
    pq.write_table(cur, paths[1])
    return paths


def test_cli_drift_json_html_and_exit_code(tmp_path: Path, w5_paths: tuple[Path, Path]) -> None:
    home = tmp_path / "home"
    assert ghaf(home, "init").returncode == 0
    out = tmp_path / "report.html"
    run = ghaf(
        home, "monitor", "drift", "--reference", str(w5_paths[0]), "--current",
        str(w5_paths[1]), "--json", "--html", str(out), "--no-domain",
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # drift found
    body = json.loads(run.stdout)
    assert sorted(body["drifted_columns"]) == ["cat_0", "num_00", "num_01", "num_02", "num_03",
                                               "num_04"]  # fmt: skip
    assert out.stat().st_size < 2_000_000 and "<svg" in out.read_text()
    table = ghaf(home, "monitor", "drift", "--reference", str(w5_paths[0]), "--current",
                 str(w5_paths[0]), "--no-domain")  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "0 column(s) drifted" in table.stdout


def test_cli_bad_input_is_one_line_and_stores_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert ghaf(home, "init").returncode == 0
    run = ghaf(home, "monitor", "drift", "--reference", str(tmp_path / "nope.parquet"),
               "--current", str(tmp_path / "nope.parquet"))  # fmt: skip
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "nope.parquet" in run.stderr
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    run = ghaf(home, "monitor", "profile", str(bad), "--name", "ref")
    assert run.returncode != 0 and "not a readable Parquet file" in run.stderr
    run = ghaf(home, "monitor", "drift", "--reference", "profile:none", "--current", str(bad))
    assert run.returncode != 0 and "no stored profile" in run.stderr


def test_cli_profile_then_drift_against_the_stored_profile(
    tmp_path: Path, w5_paths: tuple[Path, Path]
) -> None:
    home = tmp_path / "home"
    assert ghaf(home, "init").returncode == 0
    run = ghaf(home, "monitor", "profile", str(w5_paths[0]), "--name", "w5")
    assert run.returncode == 0 and "w5@1" in run.stdout, run.stderr
    run = ghaf(home, "monitor", "drift", "--reference", "profile:w5", "--current",
               str(w5_paths[1]), "--json", "--no-domain")  # fmt: skip
    assert run.returncode == 1 and "cat_0" in json.loads(run.stdout)["drifted_columns"]


def test_save_profile_is_governed_and_versioned(platform: Platform) -> None:
    profile = build_profile(pa.table({"x": np.arange(100.0)}))
    first = save_profile(platform, platform.admin(), "ref", profile, source="unit")
    second = save_profile(platform, platform.admin(), "ref", profile, source="unit")
    assert (first.version, second.version) == (1, 2) and first.digest == second.digest
    loaded = load_profile(platform, "ref@1")
    np.testing.assert_array_equal(loaded.sorted_values("x"), np.arange(100.0))
    with pytest.raises(NotFoundError):
        load_profile(platform, "missing")
    with pytest.raises(InvalidInputError):
        save_profile(platform, platform.admin(), "bad:name", profile)
    with platform.read_session() as session:
        assert session.execute(select(func.count()).select_from(ReferenceProfileRow)).scalar() == 2
    window = profile_window("profile:ref", platform)
    assert window.num_rows == 100


def test_html_report_size_does_not_grow_with_rows() -> None:
    small = [build_profile(t) for t in w5_tables(seed=7, rows=2_000)]
    large = [build_profile(t) for t in w5_tables(seed=7, rows=100_000)]
    sizes = [len(render_html(compare_profiles(*pair))) for pair in (small, large)]
    assert sizes[1] < 2_000_000 and abs(sizes[1] - sizes[0]) < 0.1 * sizes[0]


def test_quality_against_reference_profile() -> None:
    ref = build_profile(pa.table({"x": np.arange(100.0), "c": ["a", "b"] * 50}))
    window = pa.table({"x": [1.0, 500.0, None, None], "c": ["a", "zz", None, "b"]})
    report = check_quality(window, reference=ref)
    x, c = report.columns
    assert x.missing_rate == 0.5 and x.out_of_range_rate == 0.25 and x.problems
    assert c.unseen_rate == 0.25 and not report.ok
    wrong = check_quality(pa.table({"x": ["s"], "extra": [1]}), reference=ref)
    assert any("missing" in v for v in wrong.violations)
    assert any("string" in v for v in wrong.violations)
    with pytest.raises(InvalidInputError):
        check_quality(window.slice(0, 0), reference=ref)


def test_quality_against_a_data_contract() -> None:
    from ghaf.data.contracts import contract_from_dict

    contract = contract_from_dict(
        {
            "columns": {
                "x": {"type": "float64", "nullable": False, "min": 0, "max": 10},
                "c": {"allowed": ["a", "b"]},
            }
        }
    )
    report = check_quality(
        pa.table({"x": [1.0, 50.0, None, 2.0], "c": ["a", "q", "b", "b"]}), contract=contract
    )
    by = {c.column: c for c in report.columns}
    assert by["x"].out_of_range_rate == 0.25 and by["x"].missing_rate == 0.25
    assert len(by["x"].problems) == 2 and by["c"].unseen_rate == 0.25


def test_streaming_detectors_use_river_and_find_the_change() -> None:
    rng = np.random.default_rng(0)
    series = np.r_[rng.normal(0, 1, 1000), rng.normal(3, 1, 1000)]
    for method in ("adwin", "page_hinkley"):
        changes = detect_changes(series, method)
        assert changes and 1000 <= changes[0] < 1100, (method, changes)
    assert detect_changes(rng.normal(0, 1, 1000), "page_hinkley") == []
    with pytest.raises(InvalidInputError):
        MetricMonitor("cusum")  # type: ignore[arg-type]


def test_prediction_and_label_rate_drift() -> None:
    rng = np.random.default_rng(1)
    moved = score_drift(rng.beta(2, 5, 5000), rng.beta(2.5, 5, 5000))
    assert moved.drifted and moved.psi > 0
    assert not score_drift(rng.beta(2, 5, 5000), rng.beta(2, 5, 5000)).drifted
    labels = label_rate_drift(rng.random(20_000) < 0.02, rng.random(20_000) < 0.035)
    assert labels.drifted and labels.current_rate > labels.reference_rate
    with pytest.raises(InvalidInputError):
        label_rate_drift([0, 2], [1, 0])
