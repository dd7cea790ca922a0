"""The analysis as tables for people (``--output json`` prints ``Analysis.to_dict()``)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from ghaf.experiments.stats.table import Analysis


def fmt(value: float | None, digits: int = 4) -> str:
    """A number for people: ``-`` for missing or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def print_analysis(console: Console, analysis: Analysis) -> None:
    """Goal, guardrails, sample ratio, then the verdict and its reasons."""
    g = analysis.goal
    test = "mSPRT (always valid)" if analysis.sequential else g.test
    table = Table(
        "metric", "test", "control", "treatment", "n", "lift", "interval", "rel. lift", "p"
    )
    table.add_row(
        analysis.metric_col,
        test,
        fmt(g.control.mean),
        fmt(g.treatment.mean),
        f"{g.control.n} / {g.treatment.n}",
        fmt(g.absolute_lift),
        f"[{fmt(g.ci.low)}, {fmt(g.ci.high)}]",
        f"{fmt(g.relative_lift)} [{fmt(g.relative_ci.low)}, {fmt(g.relative_ci.high)}]",
        fmt(g.p_value),
    )
    for check in analysis.decision.guardrails:
        r = check.result
        if r is None:
            table.add_row(f"{check.name} (guardrail)", "-", "-", "-", "0", "-", "-", "-", "-")
            continue
        table.add_row(
            f"{check.name} (guardrail: {check.status})",
            r.test,
            fmt(r.control.mean),
            fmt(r.treatment.mean),
            f"{r.control.n} / {r.treatment.n}",
            fmt(r.absolute_lift),
            f"[{fmt(r.ci.low)}, {fmt(r.ci.high)}]",
            f"{fmt(r.relative_lift)}",
            fmt(r.p_value),
        )
    console.print(table)
    srm = analysis.srm
    console.print(
        f"sample ratio: {dict(zip(srm.variants, srm.counts, strict=True))}, "
        f"chi-square p = {fmt(srm.p_value)}"
        + (" [bold red]MISMATCH[/]" if srm.mismatch else " (ok)")
    )
    if analysis.cuped is not None:
        console.print(
            f"CUPED on {analysis.covariate_col}: theta {fmt(analysis.cuped.theta)}, "
            f"variance reduced by {analysis.cuped.variance_reduction:.1%}"
        )
    if any(analysis.missing_metric.values()):
        console.print(f"units with no {analysis.metric_col} yet: {analysis.missing_metric}")
    d = analysis.decision
    console.print(f"[bold]decision: {d.verdict}[/]")
    for reason in d.reasons:
        console.print(f"  - {reason}", markup=False, highlight=False)
