"""The exported rules under a real ``promtool``: valid, and the same verdicts as the engine."""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 - promtool is a fixed local binary
from pathlib import Path

import numpy as np
import pytest
import yaml

from ghaf.slo import evaluate
from ghaf.slo.prometheus import export_rules, promtool_test
from tests.unit.slo.scenarios import Scenario, fast_burn, quiet, slow_burn, slow_responses

pytestmark = pytest.mark.slow


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: apt-get install prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def _stable_indices(s: Scenario, every: int, margin: int = 5) -> list[int]:
    """Evaluation points where the engine's firing set holds for ``margin`` buckets either
    side: Prometheus's windows end on a sample rather than a bucket edge, so a verdict right
    at a threshold crossing may fall a minute apart; away from crossings they must agree."""
    firing = np.stack([e.firing for e in evaluate(s.slo, s.series)])
    n = firing.shape[1]
    out = []
    for i in range(margin, n - margin, every):
        window = firing[:, i - margin : i + margin + 1]
        if (window == window[:, :1]).all():
            out.append(i)
    return out


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # nosec B603 - fixed argv, no shell
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "make", [fast_burn, slow_burn, quiet, slow_responses], ids=lambda f: f.__name__
)
def test_promtool_agrees_with_the_engine(make: object, tmp_path: Path) -> None:
    promtool = _promtool()
    s: Scenario = make()  # type: ignore[operator]
    rules = tmp_path / "slo.rules.yaml"
    rules.write_text(export_rules([s.slo]))
    checked = _run(promtool, "check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    every = 60 if s.name == "slow-burn" else 5
    indices = _stable_indices(s, every)
    expected = promtool_test(s.slo, s.series, indices, rules.name)
    cases = expected["tests"][0]["alert_rule_test"]
    firing = sum(bool(c["exp_alerts"]) for c in cases)
    if s.name == "quiet":
        assert firing == 0
    else:  # the comparison covers both verdicts, firing and quiet
        assert 0 < firing < len(cases), (firing, len(cases))
    spec = tmp_path / "slo.test.yaml"
    spec.write_text(yaml.safe_dump(expected, sort_keys=False, width=10_000))
    tested = _run(promtool, "test", "rules", str(spec))
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-4000:]


def test_a_wrong_expectation_fails_under_promtool(tmp_path: Path) -> None:
    """The check can fail: claim no page during the outage and promtool says so."""
    promtool = _promtool()
    s = fast_burn()
    rules = tmp_path / "slo.rules.yaml"
    rules.write_text(export_rules([s.slo]))
    firing_at = int(np.flatnonzero(evaluate(s.slo, s.series)[0].firing)[0]) + 5
    expected = promtool_test(s.slo, s.series, [firing_at], rules.name)
    assert expected["tests"][0]["alert_rule_test"][0]["exp_alerts"]
    expected["tests"][0]["alert_rule_test"][0]["exp_alerts"] = []
    spec = tmp_path / "slo.test.yaml"
    spec.write_text(yaml.safe_dump(expected, sort_keys=False, width=10_000))
    tested = _run(promtool, "test", "rules", str(spec))
    assert tested.returncode != 0
    assert "ErrorBudgetBurn" in tested.stdout + tested.stderr
