"""``ghaf monitor``: drift reports, stored reference profiles, data-quality checks.

Against a server (``GHAF_URL``), windows are a stored profile or a dataset there; a
current window that is a local Parquet file is sent with the check and not kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from ghaf.monitoring import DriftReport

app = typer.Typer(help="Monitoring: drift and data quality.", no_args_is_help=True)

WINDOW_HELP = "A Parquet path, a dataset ref NAME:V, or profile:NAME[@V]."
ProjectOption = Annotated[
    str | None, typer.Option("--project", help="Project (default: GHAF_PROJECT).")
]


def _columns(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@app.command("drift")
def drift(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option("--reference", help=WINDOW_HELP)],
    current: Annotated[str, typer.Option("--current", help=WINDOW_HELP)],
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --output json.")] = False,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to compare.")] = None,
    alpha: Annotated[float, typer.Option(help="False-discovery rate across columns.")] = 0.05,
    no_domain: Annotated[
        bool, typer.Option("--no-domain", help="Skip the domain classifier.")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Compare a current window with a reference; exit 1 when any column drifted."""
    if not 0 < alpha < 1:
        raise InvalidInputError(f"--alpha {alpha} is not in (0, 1)", hint="use e.g. 0.05")
    cli = state(ctx)
    names = _columns(columns)
    client = cli.remote()
    if client is not None:
        if Path(reference).is_file():
            raise InvalidInputError(
                f"--reference {reference} is a local file, and GHAF_URL names a server",
                hint="store it there first (ghaf monitor profile FILE --name NAME), "
                "then pass --reference profile:NAME",
            )
        window: str | Path = Path(current) if Path(current).is_file() else current
        body = client.check_drift(
            reference,
            window,
            columns=names,
            alpha=alpha,
            domain_classifier=not no_domain,
            histograms=html is not None,
            current_name=current,
        )
        report = _report_of(body) if html is not None else None
    else:
        report = _drift_here(cli, reference, current, names, alpha, not no_domain)
        body = report.to_dict(histograms=False)
    if html is not None and report is not None:
        from ghaf.monitoring.report_html import render_html

        html.write_text(render_html(report), encoding="utf-8")
    if as_json or output is Output.json:
        for column in body["columns"]:
            column.pop("histogram", None)
        emit_json(body)
    else:
        _print_report(cli, body, html)
    if body["drifted_columns"]:
        raise typer.Exit(1)


def _drift_here(
    cli: CliState,
    reference: str,
    current: str,
    names: list[str] | None,
    alpha: float,
    domain: bool,
) -> DriftReport:
    from ghaf.monitoring import DriftOptions, compare_profiles, profile_window
    from ghaf.monitoring.inputs import describe

    platform = cli.platform()
    ref = profile_window(reference, platform, columns=names)
    cur = profile_window(current, platform, columns=names)
    return compare_profiles(
        ref,
        cur,
        DriftOptions(alpha=alpha, domain_classifier=domain),
        reference_name=describe(reference),
        current_name=describe(current),
    )


def _report_of(body: dict[str, Any]) -> DriftReport:
    """The report a server answered, as the record embedded mode makes (for the HTML)."""
    from ghaf.monitoring.base import ColumnDrift, DomainResult, DriftReport, Histogram

    fields = {k: v for k, v in body.items() if k != "drifted_columns"}
    columns = [
        ColumnDrift(**{**c, "histogram": Histogram(**c["histogram"]) if c["histogram"] else None})
        for c in fields.pop("columns")
    ]
    domain = fields.pop("domain")
    if domain is not None:
        domain = DomainResult(
            **{**domain, "top_columns": [(str(n), float(v)) for n, v in domain["top_columns"]]}
        )
    return DriftReport(**fields, columns=columns, domain=domain)


def _print_report(cli: CliState, report: dict[str, Any], html: Path | None) -> None:
    table = Table(title=f"drift: {report['current_name']} vs {report['reference_name']}")
    for header in ("column", "kind", "test", "statistic", "p (BH)", "PSI", "JS", "verdict"):
        table.add_column(header, justify="left" if header in ("column", "kind") else "right")
    for c in report["columns"]:
        drifted = c["verdict"] == "drift"
        style = "bold red" if drifted else ("yellow" if c["verdict"] != "ok" else "")
        table.add_row(
            c["column"],
            c["kind"],
            c["method"],
            _fmt(c["statistic"]),
            _fmt(c["adjusted_p"]),
            _fmt(c["distances"].get("psi")),
            _fmt(c["distances"].get("js")),
            c["verdict"] + (f" ({c['note']})" if c["note"] and not drifted else ""),
            style=style,
        )
    cli.console.print(table)
    d = report["domain"]
    if d is not None:
        drivers = ", ".join(name for name, _ in d["top_columns"][:3])
        cli.console.print(
            f"domain classifier AUC {d['auc']:.3f} (threshold {d['threshold']:.3f}): "
            f"{'DRIFT' if d['drifted'] else 'no drift'}"
            + (f"; driven by {drivers}" if drivers and d["drifted"] else "")
        )
    drifted_columns = report["drifted_columns"]
    cli.console.print(
        f"{len(drifted_columns)} column(s) drifted"
        + (f": {', '.join(drifted_columns)}" if drifted_columns else "")
    )
    if html is not None:
        cli.console.print(f"HTML report: {html}")


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
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Summarize a reference window once and store it, for later drift checks."""
    cli = state(ctx)
    where = project or cli.settings.project
    names = _columns(columns)
    client = cli.remote()
    if client is not None:
        local = Path(data).is_file()
        stored = client.save_profile(
            name,
            project=where,
            dataset=None if local else data,
            path=Path(data) if local else None,
            columns=names,
            source=data,
        )
    else:
        stored = _save_here(cli, data, name, names, where)
    if output is Output.json:
        emit_json(stored)
        return
    cli.console.print(
        f"stored profile {stored['name']}@{stored['version']} ({stored['num_rows']:,} rows, "
        f"{stored['num_columns']} columns, digest {stored['digest'][:12]})"
    )


def _save_here(
    cli: CliState, data: str, name: str, names: list[str] | None, project: str
) -> dict[str, Any]:
    from ghaf.monitoring import profile_window
    from ghaf.monitoring.store import save_profile

    platform = cli.platform()
    summary = profile_window(data, platform, columns=names)
    stored = save_profile(
        platform.in_project(project), cli.actor(), name, summary, source=data, project=project
    )
    return dict(to_jsonable(stored))


@app.command("profiles")
def profiles(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(help="NAME (its versions) or NAME@V (one version); none: every profile."),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """List stored reference profiles (against a server: those of your projects)."""
    cli = state(ctx)
    client = cli.remote()
    one = ref is not None and "@" in ref
    if client is not None:
        found = [client.profile(ref)] if one and ref else client.profiles(ref)
    else:
        found = _profiles_here(cli, ref, one)
    if ref is not None and not found:
        raise NotFoundError(
            f"no stored profile {ref!r}",
            hint="store one with `ghaf monitor profile DATA --name NAME`",
        )
    if output is Output.json:
        emit_json({"profiles": found})
        return
    table = Table("name", "version", "project", "rows", "columns", "source", "by", "created")
    for p in found:
        table.add_row(
            p["name"],
            str(p["version"]),
            p["project"],
            f"{p['num_rows']:,}",
            str(p["num_columns"]),
            p["source"],
            p["created_by"],
            str(p["created_at"]),
        )
    cli.console.print(table)


def _profiles_here(cli: CliState, ref: str | None, one: bool) -> list[dict[str, Any]]:
    from ghaf.monitoring.store import get_profile, list_profiles

    platform = cli.platform()
    name = ref.partition("@")[0] if ref else None
    found = [get_profile(platform, ref)] if one and ref else list_profiles(platform, name)
    return [dict(to_jsonable(p)) for p in found]
