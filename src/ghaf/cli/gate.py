"""``ghaf gate``: check a model against a gate policy (exit non-zero on failure, JUnit XML)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.errors import PolicyViolationError

app = typer.Typer(help="Evaluation gates for CI/CD.", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="MODEL:VERSION, MODEL@alias or a model directory.")],
    policy: Annotated[Path, typer.Option("--policy", help="Gate policy YAML file.")],
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write the results as JUnit XML here.")
    ] = None,
) -> None:
    """Check every rule of the policy; exits 7 if any fails."""
    from ghaf.evaluation.gates import check_gate, evidence_for
    from ghaf.evaluation.policy import load_policy

    cli = state(ctx)
    rules = load_policy(policy)
    evidence = evidence_for(cli.platform(), target)
    report = check_gate(rules, evidence)
    if junit is not None:
        junit.write_text(report.to_junit())
    table = Table("rule", "result", "reason", title=f"gate {report.policy}: {report.subject}")
    for result in report.results:
        table.add_row(result.rule, "pass" if result.passed else "[red]FAIL[/]", result.reason)
    cli.console.print(table)
    for note in evidence.notes:
        cli.console.print(f"note: {note}")
    if not report.passed:
        for failure in report.failures:
            cli.console.print(f"FAIL {failure.rule}: {failure.reason}", highlight=False)
        raise PolicyViolationError(
            f"gate {report.policy} failed for {report.subject}: "
            f"{len(report.failures)} of {len(report.results)} rules",
            hint="each failing rule is listed above",
        )
    cli.console.print(f"gate {report.policy} passed ({len(report.results)} rules)")


@app.command("example")
def example() -> None:
    """Print an example gate policy."""
    from ghaf.evaluation.policy import EXAMPLE_POLICY

    typer.echo(EXAMPLE_POLICY, nl=False)
