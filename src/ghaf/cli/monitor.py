"""``ghaf monitor``: drift reports, stored reference profiles, data-quality checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.errors import InvalidInputError

app = typer.Typer(help="Monitoring: drift and data quality.", no_args_is_help=True)

WINDOW_HELP = "A Parquet path, a dataset ref NAME:V, or profile:NAME[@V]."


def _columns(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@app.command("drift")
def drift(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option("--reference", help=WINDOW_HELP)],
    current: Annotated[str, typer.Option("--current", help=WINDOW_HELP)],
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to compare.")] = None,
    alpha: Annotated[float, typer.Option(help="False-discovery rate across columns.")] = 0.05,
    no_domain: Annotated[
        bool, typer.Option("--no-domain", help="Skip the domain classifier.")
    ] = False,
) -> None:
    """Compare a current window with a reference; exit 1 when any column drifted."""
    from ghaf.monitoring import DriftOptions, compare_profiles, profile_window
    from ghaf.monitoring.inputs import describe

    if not 0 < alpha < 1:
        raise InvalidInputError(f"--alpha {alpha} is not in (0, 1)", hint="use e.g. 0.05")
    cli = state(ctx)
    platform = cli.platform()
    names = _columns(columns)
    ref = profile_window(reference, platform, columns=names)
    cur = profile_window(current, platform, columns=names)
    report = compare_profiles(
        ref,
        cur,
        DriftOptions(alpha=alpha, domain_classifier=not no_domain),
        reference_name=describe(reference),
        current_name=describe(current),
    )
    if html is not None:
        from ghaf.monitoring.report_html import render_html

        html.write_text(render_html(report), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(report.to_dict(histograms=False), default=str))
    else:
        table = Table(title=f"drift: {report.current_name} vs {report.reference_name}")
        for header in ("column", "kind", "test", "statistic", "p (BH)", "PSI", "JS", "verdict"):
            table.add_column(header, justify="left" if header in ("column", "kind") else "right")
        for c in report.columns:
            style = "bold red" if c.drifted else ("yellow" if c.verdict != "ok" else "")
            table.add_row(
                c.column,
                c.kind,
                c.method,
                _fmt(c.statistic),
                _fmt(c.adjusted_p),
                _fmt(c.distances.get("psi")),
                _fmt(c.distances.get("js")),
                c.verdict + (f" ({c.note})" if c.note and not c.drifted else ""),
                style=style,
            )
        cli.console.print(table)
        if report.domain is not None:
            d = report.domain
            drivers = ", ".join(name for name, _ in d.top_columns[:3])
            cli.console.print(
                f"domain classifier AUC {d.auc:.3f} (threshold {d.threshold:.3f}): "
                f"{'DRIFT' if d.drifted else 'no drift'}"
                + (f"; driven by {drivers}" if drivers and d.drifted else "")
            )
        drifted = report.drifted_columns
        cli.console.print(
            f"{len(drifted)} column(s) drifted" + (f": {', '.join(drifted)}" if drifted else "")
        )
        if html is not None:
            cli.console.print(f"HTML report: {html}")
    if report.drifted_columns:
        raise typer.Exit(1)


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}"


@app.command("profile")
def profile(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help="A Parquet path or a dataset ref NAME:V.")],
    name: Annotated[str, typer.Option("--name", help="Name to store the profile under.")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns.")] = None,
) -> None:
    """Summarize a reference window once and store it, for later drift checks."""
    from ghaf.monitoring import profile_window
    from ghaf.monitoring.store import save_profile

    cli = state(ctx)
    platform = cli.platform()
    summary = profile_window(data, platform, columns=_columns(columns))
    stored = save_profile(platform, cli.actor(), name, summary, source=data)
    cli.console.print(
        f"stored profile {stored.name}@{stored.version} ({stored.num_rows:,} rows, "
        f"{stored.num_columns} columns, digest {stored.digest[:12]})"
    )
