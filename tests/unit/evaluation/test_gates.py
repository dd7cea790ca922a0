"""Gate policies and ``ghaf gate check``: a reason per failing rule, JUnit XML, error lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from ghaf.errors import ConfigError
from ghaf.evaluation import check_gate, evaluate, parse_policy
from ghaf.evaluation.gates import GateEvidence, evaluation_from_flat, evidence_from_dir
from ghaf.evaluation.policy import EXAMPLE_POLICY

POLICY = """\
name: prod
metrics:
  auc: {min: 0.99}
  brier: {max: 0.5}
fairness:
  demographic_parity_difference: {max: 0.0001}
champion:
  metric: auc
  min_improvement: 0.0
require:
  signature: true
  approvals: 1
"""


def _evaluation(seed: int = 0, with_champion: bool = True):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 1000)
    p = np.clip(0.3 * y + rng.random(1000) * 0.7, 0, 1)
    champ = np.clip(0.35 * y + rng.random(1000) * 0.65, 0, 1) if with_champion else None
    gender = rng.choice(["f", "m"], 1000)
    return evaluate(y, p, sensitive={"gender": gender}, champion_score=champ)


def test_example_policy_parses() -> None:
    policy = parse_policy(EXAMPLE_POLICY)
    assert policy.require.approvals == 1 and policy.metrics["auc"].min == 0.75


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("name: x\nmetrics:\n  auc: {mn: 0.7}\n", 3, "metrics.auc.mn: unknown key"),
        ("name: x\nmetrics:\n  auc: {}\n", 3, "give min, max or both"),
        ("name: x\nrequire:\n  approvals: -1\n", 3, "require.approvals"),
        ("name: x\nmetrics:\n  auc: {min: high}\n", 3, "metrics.auc.min"),
        ("name: x\nmetrics: [\n", 3, "not valid YAML"),
        ("name: x\nbogus: 1\n", 2, "bogus: unknown key"),
        ("- a\n", 1, "a gate policy is a mapping"),
    ],
)
def test_bad_policy_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "p.yaml")
    assert f"p.yaml:{line}:" in info.value.headline
    assert words in info.value.headline


def test_each_failing_rule_has_a_reason_and_junit_lists_them() -> None:
    evidence = GateEvidence(subject="m:1", evaluation=_evaluation(), signed=False)
    report = check_gate(parse_policy(POLICY), evidence)
    assert not report.passed
    reasons = {r.rule: r.reason for r in report.failures}
    assert "below the minimum 0.99" in reasons["metric auc"]
    assert "metric brier" not in reasons
    assert "above the maximum" in reasons["fairness gender.demographic_parity_difference"]
    assert "does not lie above" in reasons["champion"]
    assert "not signed" in reasons["signature"]
    assert reasons["approvals"] == "0 approval(s) of 1 required"
    root = ET.fromstring(report.to_junit())
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == str(len(reasons))
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == set(reasons)


def test_a_passing_gate_passes() -> None:
    policy = parse_policy("metrics:\n  auc: {min: 0.6}\nchampion: {metric: auc}\n")
    report = check_gate(policy, GateEvidence("m:1", _evaluation(with_champion=False)))
    assert report.passed, report.failures


def test_cli_gate_check_on_a_model_dir(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    _evaluation().write(model)
    # A pickle that would call os.system: the scan must flag it (it is never loaded).
    (model / "weights.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY + "  clean_scan: true\n")
    junit = tmp_path / "out.xml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ghaf",
            "gate",
            "check",
            str(model),
            "--policy",
            str(policy),
            "--junit",
            str(junit),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 7, run.stderr
    assert "FAIL metric auc" in run.stdout
    assert "FAIL signature" in run.stdout
    assert "FAIL clean scan" in run.stdout
    assert "gate prod failed" in run.stderr
    assert ET.parse(junit).getroot().find("testsuite") is not None
    passing = tmp_path / "ok.yaml"
    passing.write_text("metrics:\n  auc: {min: 0.5}\n")
    run = subprocess.run(
        [sys.executable, "-m", "ghaf", "gate", "check", str(model), "--policy", str(passing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_cli_bad_policy_and_missing_model(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    policy = tmp_path / "bad.yaml"
    policy.write_text("name: x\nmetrics:\n  auc: {minimum: 1}\n")
    run = subprocess.run(
        [sys.executable, "-m", "ghaf", "gate", "check", str(model), "--policy", str(policy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert f"{policy}:3: metrics.auc.minimum: unknown key" in run.stderr
    assert "Traceback" not in run.stderr
    policy.write_text("metrics:\n  auc: {min: 0.5}\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "ghaf",
            "gate",
            "check",
            str(tmp_path / "nope"),
            "--policy",
            str(policy),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr


def test_evidence_without_evaluation_fails_metric_rules(tmp_path: Path) -> None:
    evidence = evidence_from_dir(tmp_path)
    report = check_gate(parse_policy("metrics:\n  auc: {min: 0.5}\n"), evidence)
    assert report.failures[0].reason == "metric auc is missing from the evaluation"
    assert evidence.notes


def test_each_rule_records_its_threshold_and_measured_value() -> None:
    policy = parse_policy(
        "metrics:\n  auc: {min: 0.8}\n  brier: {min: 0.0, max: 0.3}\n"
        "fairness:\n  demographic_parity_difference: {max: 0.1}\n"
        "require: {signature: true, approvals: 2}\n"
    )
    # As a registered version stores them: flat numbers, fairness as fairness.ATTR.MEASURE.
    flat = {"auc": 0.7, "brier": 0.2, "fairness.gender.demographic_parity_difference": 0.3}
    evidence = GateEvidence("m:2", evaluation_from_flat(flat), signed=True, approvals=["bob"])
    rules = {r.rule: r for r in check_gate(policy, evidence).results}
    assert (rules["metric auc"].threshold, rules["metric auc"].measured) == (">= 0.8", 0.7)
    assert not rules["metric auc"].passed
    assert rules["metric brier"].threshold == "0 <= x <= 0.3" and rules["metric brier"].passed
    fair = rules["fairness gender.demographic_parity_difference"]
    assert (fair.threshold, fair.measured, fair.passed) == ("<= 0.1", 0.3, False)
    assert (rules["signature"].threshold, rules["signature"].measured) == ("signed", "signed")
    assert (rules["approvals"].threshold, rules["approvals"].measured) == (">= 2", 1)
    missing = check_gate(parse_policy("metrics:\n  f1: {min: 0.5}\n"), evidence).results[0]
    assert (missing.measured, missing.threshold, missing.passed) == (None, ">= 0.5", False)


def test_a_champion_rule_on_flat_metrics_fails_with_a_reason() -> None:
    """Flat metrics keep numbers only: the comparison's metric name is gone, never a crash."""
    flat = {"auc": 0.8, "comparison.ci_low": 0.01, "comparison.ci_high": 0.05}
    flat |= {"comparison.improvement": 0.03, "comparison.confidence": 0.95}
    report = check_gate(
        parse_policy("champion: {metric: auc}\n"), GateEvidence("m:1", evaluation_from_flat(flat))
    )
    assert not report.passed
    assert "does not name its metric" in report.failures[0].reason
