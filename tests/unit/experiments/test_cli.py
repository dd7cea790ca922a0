"""``ghaf experiments analyze`` and ``report`` on tables of units, as an analyst runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest
from typer.testing import CliRunner

from ghaf.cli.main import app


def _units(n: int = 20_000, seed: int = 11, control_share: float = 0.5) -> pa.Table:
    rng = np.random.default_rng(seed)
    variant = np.where(rng.random(n) < control_share, "control", "treatment")
    treated = variant == "treatment"
    pre = rng.gamma(2.0, 5.0, n)
    return pa.table(
        {
            "unit": np.arange(n),
            "variant": variant,
            "converted": (rng.random(n) < np.where(treated, 0.12, 0.10)).astype(np.int64),
            "spend": 2 + 0.8 * pre + rng.normal(0, 2, n) + np.where(treated, 0.15, 0.0),
            "pre_spend": pre,
            "latency_ms": rng.normal(100, 10, n) + np.where(treated, 4.0, 0.0),
            "day": np.array([f"2026-11-{d:02d}" for d in rng.integers(1, 31, n)], dtype=object),
        }
    )


def _run(*args: str) -> tuple[int, str]:
    out = CliRunner().invoke(app, ["experiments", *args])
    return out.exit_code, out.output


def _ghaf(*args: str) -> tuple[int, str]:
    """The real entry point (errors become one line and the exit code of the table)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [sys.executable, "-m", "ghaf", "experiments", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def units(tmp_path: Path) -> Path:
    path = tmp_path / "units.parquet"
    pq.write_table(_units(), path)
    return path


def test_analyze_json_matches_statsmodels_and_ships(units: Path) -> None:
    code, text = _run(
        "analyze",
        "--data",
        str(units),
        "--variant-col",
        "variant",
        "--metric-col",
        "converted",
        "--output",
        "json",
    )
    assert code == 0, text
    analysis = json.loads(text)["analysis"]
    table = pq.read_table(units).to_pandas()
    counts = table.groupby("variant")["converted"].agg(["sum", "count"])
    z, p = proportions_ztest(
        [counts.loc["treatment", "sum"], counts.loc["control", "sum"]],
        [counts.loc["treatment", "count"], counts.loc["control", "count"]],
    )
    goal = analysis["goal"]
    assert goal["test"] == "two_proportion_z"
    assert goal["statistic"] == pytest.approx(z, rel=1e-10)
    assert goal["p_value"] == pytest.approx(p, rel=1e-8)
    assert analysis["srm"]["counts"] == [
        int(counts.loc["control", "count"]),
        int(counts.loc["treatment", "count"]),
    ]
    assert analysis["decision"]["verdict"] == "ship"


def test_csv_gives_the_same_analysis_as_parquet(units: Path, tmp_path: Path) -> None:
    csv = tmp_path / "units.csv"
    pacsv.write_csv(pq.read_table(units), csv)
    results = []
    for path in (units, csv):
        code, text = _run(
            "analyze",
            "--data",
            str(path),
            "--variant-col",
            "variant",
            "--metric-col",
            "spend",
            "--covariate",
            "pre_spend",
            "--sequential",
            "--output",
            "json",
        )
        assert code == 0, text
        results.append(json.loads(text)["analysis"])
    parquet, from_csv = results
    assert parquet["goal"]["test"] == "msprt"
    assert parquet["cuped"]["variance_reduction"] > 0.5
    assert from_csv["goal"]["p_value"] == pytest.approx(parquet["goal"]["p_value"], rel=1e-9)
    assert from_csv["cuped"]["theta"] == pytest.approx(parquet["cuped"]["theta"], rel=1e-12)


def test_a_breached_guardrail_stops_in_the_table_output(units: Path) -> None:
    code, text = _run(
        "analyze",
        "--data",
        str(units),
        "--variant-col",
        "variant",
        "--metric-col",
        "converted",
        "--guardrail",
        "latency_ms:lower:1",
    )
    assert code == 0, text
    assert "decision: stop" in text
    assert "latency_ms breached" in text


def test_a_skewed_split_blocks(tmp_path: Path) -> None:
    path = tmp_path / "skewed.parquet"
    pq.write_table(_units(n=40_000, control_share=0.53), path)
    code, text = _run(
        "analyze",
        "--data",
        str(path),
        "--variant-col",
        "variant",
        "--metric-col",
        "converted",
        "--output",
        "json",
    )
    assert code == 0, text
    decision = json.loads(text)["analysis"]["decision"]
    assert decision["verdict"] == "blocked"
    assert "sample-ratio mismatch" in decision["reasons"][0]


def test_units_without_an_outcome_count_for_the_ratio_not_the_test(tmp_path: Path) -> None:
    table = _units(n=2_000)
    spend = table.column("spend").to_numpy().copy()
    spend[:100] = np.nan
    mask = np.zeros(2_000, dtype=bool)
    mask[:100] = True
    path = tmp_path / "late.parquet"
    pq.write_table(table.set_column(3, "spend", pa.array(spend, mask=mask)), path)
    code, text = _run(
        "analyze",
        "--data",
        str(path),
        "--variant-col",
        "variant",
        "--metric-col",
        "spend",
        "--output",
        "json",
    )
    assert code == 0, text
    analysis = json.loads(text)["analysis"]
    assert sum(analysis["missing_metric"].values()) == 100
    assert sum(analysis["srm"]["counts"]) == 2_000
    variant = np.asarray(table.column("variant").to_pylist())
    ref = stats.ttest_ind(
        spend[100:][variant[100:] == "treatment"],
        spend[100:][variant[100:] == "control"],
        equal_var=False,
    )
    assert analysis["goal"]["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--metric-col", "nope"], "--metric-col 'nope': no such column"),
        (["--metric-col", "converted", "--guardrail", "latency_ms:faster"], "--guardrail"),
        (["--metric-col", "converted", "--weights", "control=50"], "--weights does not plan"),
        (["--metric-col", "converted", "--alpha", "2"], "alpha 2.0"),
        (["--metric-col", "day"], "column 'day' is not numeric"),
        (["--metric-col", "variant"], "must name different columns"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(units: Path, args: list[str], needle: str) -> None:
    code, text = _ghaf("analyze", "--data", str(units), "--variant-col", "variant", *args)
    assert code == 3, text
    assert needle in text
    assert "Traceback" not in text
    assert text.startswith("error: ")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    code, text = _ghaf(
        "analyze",
        "--data",
        str(tmp_path / "none.parquet"),
        "--variant-col",
        "v",
        "--metric-col",
        "m",
    )
    assert code == 3, text
    assert text.startswith(f"error: --data {tmp_path / 'none.parquet'}: no such file")


def test_report_is_one_self_contained_page(units: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "ab.html"
    code, text = _run(
        "report",
        "--data",
        str(units),
        "--variant-col",
        "variant",
        "--metric-col",
        "converted",
        "--time-col",
        "day",
        "--sequential",
        "--guardrail",
        "latency_ms:lower:5",
        "--out",
        str(out),
    )
    assert code == 0, text
    page = out.read_text()
    assert page.startswith("<!doctype html>")
    assert "<svg" in page and "<polygon" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "Decision: ship" in page
    assert "latency_ms (guardrail)" in page
    assert page.count("<tr><td>2026-11-") == 30  # one row per daily look
    assert not list(out.parent.glob(".*partial"))


def test_a_planned_variant_with_no_units_blocks(tmp_path: Path) -> None:
    table = _units(n=3_000)
    only_control = table.filter(pc.equal(table.column("variant"), "control"))
    path = tmp_path / "one-sided.parquet"
    pq.write_table(only_control, path)
    code, text = _run(
        "analyze",
        "--data",
        str(path),
        "--variant-col",
        "variant",
        "--metric-col",
        "converted",
        "--weights",
        "control=50,treatment=50",
        "--output",
        "json",
    )
    assert code == 0, text
    analysis = json.loads(text)["analysis"]
    assert analysis["srm"]["counts"][1] == 0
    assert analysis["decision"]["verdict"] == "blocked"


def test_no_outcomes_yet_keeps_running(tmp_path: Path) -> None:
    table = _units(n=2_000)
    path = tmp_path / "pending.parquet"
    nothing = pa.nulls(2_000, pa.float64())
    pq.write_table(table.set_column(3, "spend", nothing), path)
    code, text = _run(
        "analyze",
        "--data",
        str(path),
        "--variant-col",
        "variant",
        "--metric-col",
        "spend",
        "--output",
        "json",
    )
    assert code == 0, text
    analysis = json.loads(text)["analysis"]
    assert analysis["decision"]["verdict"] == "keep_running"
    assert analysis["goal"]["p_value"] is None


def test_sample_size_plans_what_statsmodels_plans() -> None:
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    code, text = _run("sample-size", "--baseline", "0.10", "--mde", "0.02", "--output", "json")
    assert code == 0, text
    plan = json.loads(text)["sample_size"]
    n = NormalIndPower().solve_power(proportion_effectsize(0.12, 0.10), alpha=0.05, power=0.8)
    assert plan["n_control"] == plan["n_treatment"] == int(np.ceil(n))
    code, text = _ghaf("sample-size", "--baseline", "1.5", "--mde", "0.02")
    assert code == 3, text
    assert text.startswith("error: baseline 1.5")


def test_report_without_a_time_column_shows_the_summary_and_cuped(
    units: Path, tmp_path: Path
) -> None:
    out = tmp_path / "summary.html"
    code, text = _run(
        "report",
        "--data",
        str(units),
        "--variant-col",
        "variant",
        "--metric-col",
        "spend",
        "--covariate",
        "pre_spend",
        "--out",
        str(out),
    )
    assert code == 0, text
    page = out.read_text()
    assert "CUPED on pre_spend" in page
    assert "Lift over time" not in page
    assert "sample ratio" in page
