"""Evaluation: metrics, slices, fairness, robustness, champion vs challenger, reports, gates."""

from ghaf.evaluation.compare import Comparison, bootstrap_compare
from ghaf.evaluation.evaluate import Evaluation, evaluate
from ghaf.evaluation.gates import GateReport, check_gate
from ghaf.evaluation.policy import GatePolicy, load_policy, parse_policy
from ghaf.evaluation.report import render_report

__all__ = [
    "Comparison",
    "Evaluation",
    "GatePolicy",
    "GateReport",
    "bootstrap_compare",
    "check_gate",
    "evaluate",
    "load_policy",
    "parse_policy",
    "render_report",
]
