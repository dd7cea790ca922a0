"""``ghaf data``: ingest, validate, list, show, preview and diff dataset versions.

Against a server (``GHAF_URL``) every command prints what it prints on a home: both
modes build the HTTP API's documents and render them the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

if TYPE_CHECKING:
    from ghaf.platform import Platform

app = typer.Typer(
    help="Datasets: ingest, validate, list, versions, show, preview, diff.", no_args_is_help=True
)

ContractOpt = Annotated[Path | None, typer.Option("--contract", "-c", help="Data contract (YAML).")]
QueryOpt = Annotated[str | None, typer.Option("--query", help="SQL query for a SQL source.")]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", help="Text encoding of a CSV file (utf-16, latin-1...).")
]
ProjectOpt = Annotated[
    str | None,
    typer.Option("--project", "-p", help="Project the version belongs to (default: GHAF_PROJECT)."),
]
JsonFlag = Annotated[bool, typer.Option("--json", hidden=True, help="Same as --output json.")]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _when(iso: str) -> str:
    """``2026-12-07 02:27:08`` from an ISO-8601 time."""
    return iso[:19].replace("T", " ")


def _documents(platform: Platform, versions: list[Any]) -> list[dict[str, Any]]:
    from ghaf.data.catalog import version_document, version_projects

    projects = version_projects(platform, versions[0].name) if versions else {}
    return [to_jsonable(version_document(v, projects[v.version])) for v in versions]


def _version(cli: CliState, ref: str) -> dict[str, Any]:
    client = cli.remote()
    if client is not None:
        return client.dataset(ref)
    from ghaf.data import get_dataset

    platform = cli.platform()
    return _documents(platform, [get_dataset(platform, ref)])[0]


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="File, s3://BUCKET/KEY.parquet|csv, delta:PATH, iceberg:URL#t or a SQL URL "
            "(with --query); against a server: a file (uploaded) or an http(s):// or file:// "
            "URL the server fetches."
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    contract: ContractOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = "utf-8",
    project: ProjectOpt = None,
    output: OutputOption = Output.table,
) -> None:
    """Ingest SOURCE as a new version of dataset NAME (checked against a contract)."""
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        if query is not None:
            raise InvalidInputError(
                "--query is for a SQL source, which runs on a home",
                hint="unset GHAF_URL, or ingest a file or a URL",
            )
        doc = client.ingest(source, name, project=where, contract=contract, encoding=encoding)
    else:
        from ghaf.data import ingest

        platform = cli.platform().in_project(where)
        dv = ingest(
            platform, cli.actor(), source, name, contract=contract, query=query, encoding=encoding
        )
        doc = _documents(platform, [dv])[0]
    if output is Output.json:
        emit_json(doc)
        return
    cli.console.print(
        f"{doc['ref']}: {doc['rows']:,} rows, {len(doc['schema'])} columns, "
        f"digest {doc['digest'][:12]}"
    )
    if doc["validation"]:
        cli.console.print(f"contract: {doc['validation']['summary']}")


def _report_table(report: dict[str, Any]) -> Table:
    """A contract report (``ContractReport.to_dict``) as a Rich table."""
    table = Table(title=f"contract {report['dataset']}".strip(), caption=report["summary"])
    for column in ("check", "severity", "status", "failed", "detail"):
        table.add_column(column, justify="right" if column == "failed" else "left")
    styles = {"pass": "green", "warn": "yellow", "FAIL": "red", "quarantined": "magenta"}  # nosec B105
    for check in report["checks"]:
        status = f"[{styles[check['status']]}]{check['status']}[/]"
        table.add_row(
            check["name"], check["severity"], status, f"{check['failed']:,}", check["detail"]
        )
    return table


def _violation(report: dict[str, Any], target: str) -> InvalidInputError:
    """What ``ContractViolationError`` says for a report whose error-severity checks failed."""
    errors = [c for c in report["checks"] if c["status"] == "FAIL"]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidInputError(
        f"dataset {report['dataset'] or target!r}: contract check {first['name']} failed: "
        f"{first['detail']}{more}",
        hint="fix the data, relax the check to severity: warn, or enable quarantine",
    )


@app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="Dataset NAME[:V] or a source (file, URL).")],
    contract: Annotated[Path, typer.Option("--contract", "-c", help="Data contract (YAML).")],
    output: OutputOption = Output.table,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Also write the report as HTML here.")
    ] = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = "utf-8",
) -> None:
    """Check TARGET against a contract; exits 3 when an error-severity check fails."""
    cli = state(ctx)
    client = cli.remote()
    html: str | None = None
    if client is not None:
        if Path(target).exists() or query is not None:
            raise InvalidInputError(
                f"against a server, validate checks a stored version, and {target!r} is a "
                "local source",
                hint="ingest it first (ghaf data ingest), or unset GHAF_URL to check it here",
            )
        report = client.validate_dataset(target, contract)
        assert isinstance(report, dict)  # nosec B101 - type narrowing
        if html_file is not None:
            html = str(client.validate_dataset(target, contract, format="html"))
    else:
        from ghaf.data import validate

        found = validate(cli.platform(), target, contract, query=query, encoding=encoding)
        report = found.to_dict()
        html = found.to_html() if html_file is not None else None
    if output is Output.json:
        emit_json(report)
    else:
        cli.console.print(_report_table(report))
    if html_file is not None and html is not None:
        html_file.write_text(html, encoding="utf-8")
        if output is Output.table:
            cli.console.print(f"wrote {html_file}")
    if not report["ok"]:
        raise _violation(report, target)


@app.command("list")
def list_cmd(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """List datasets (against a server: those of your projects)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.datasets()
    else:
        from ghaf.data.catalog import dataset_projects

        found = dataset_projects(cli.platform())
    if output is Output.json:
        emit_json({"datasets": found})
        return
    table = Table("name", "latest version", "project")
    for dataset in found:
        table.add_row(dataset["name"], str(dataset["latest"]), dataset["project"])
    cli.console.print(table)


@app.command("versions")
def versions_cmd(ctx: typer.Context, name: str, output: OutputOption = Output.table) -> None:
    """List the versions of dataset NAME."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.dataset_versions(name)
    else:
        from ghaf.data import list_versions
        from ghaf.errors import NotFoundError

        platform = cli.platform()
        versions = list_versions(platform, name)
        if not versions:
            raise NotFoundError(f"dataset {name!r} does not exist", hint="ghaf data ingest ...")
        found = _documents(platform, versions)
    if output is Output.json:
        emit_json({"versions": found})
        return
    table = Table("version", "rows", "columns", "digest", "created", "by", "source")
    for v in found:
        table.add_row(
            str(v["version"]),
            f"{v['rows']:,}",
            str(len(v["schema"])),
            v["digest"][:12],
            _when(v["created_at"]),
            v["created_by"],
            v["source"],
        )
    cli.console.print(table)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME or NAME:VERSION.")],
    output: OutputOption = Output.table,
    as_json: JsonFlag = False,
) -> None:
    """Show a version's schema, tags and column profile."""
    cli = state(ctx)
    dv = _version(cli, ref)
    if as_json or output is Output.json:
        emit_json(dv)
        return
    cli.console.print(
        f"[bold]{dv['ref']}[/] {dv['rows']:,} rows, digest {dv['digest']}, "
        f"residency {dv['residency'] or '-'}, source {dv['source']}"
    )
    table = Table("column", "type", "tag", "nulls", "distinct", "min", "max", "mean", "std")
    for column, kind in dv["schema"].items():
        p = dv["profile"].get("columns", {}).get(column, {})
        table.add_row(
            column,
            kind,
            dv["column_tags"].get(column, ""),
            _fmt(p.get("nulls")),
            _fmt(p.get("distinct")),
            f"({p['redacted']}: no values kept)" if p.get("redacted") else _fmt(p.get("min")),
            _fmt(p.get("max")),
            _fmt(p.get("mean")),
            _fmt(p.get("std")),
        )
    cli.console.print(table)


@app.command("preview")
def preview_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME or NAME:VERSION.")],
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows (1 to 1,000).")] = 20,
    column: Annotated[
        list[str] | None, typer.Option("--column", help="Only this column (repeatable).")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Print the first rows of a version (a pii or sensitive one needs dataset.read_pii)."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        shown = client.preview_dataset(ref, limit=limit, columns=column)
    else:
        from ghaf.access.authorize import authorize_read
        from ghaf.data import get_dataset
        from ghaf.data.catalog import preview, project_of
        from ghaf.data.residency import object_tags
        from ghaf.security.rbac import read_action

        platform = cli.platform()
        version = get_dataset(platform, ref)
        action = read_action("dataset", object_tags(platform, version.node))
        if action != "dataset.read":
            authorize_read(
                platform,
                cli.actor(),
                action,
                version.node,
                project_of(platform, version),
                audit_allowed=True,
            )
        shown = preview(platform, version.ref, limit=limit, columns=column)
    if output is Output.json:
        emit_json(shown)
        return
    table = Table(*shown["columns"], caption=f"{len(shown['rows'])} of {shown['total_rows']:,}")
    for row in shown["rows"]:
        table.add_row(*(_fmt(v) for v in row))
    cli.console.print(table)


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="NAME:V1")],
    b: Annotated[str, typer.Argument(help="NAME:V2")],
    output: OutputOption = Output.table,
    as_json: JsonFlag = False,
) -> None:
    """Schema and profile changes from version A to version B."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        diff = client.diff_datasets(a, b)
    else:
        from ghaf.data.diff import diff_versions

        diff = to_jsonable(diff_versions(cli.platform(), a, b).to_dict())
    if as_json or output is Output.json:
        emit_json(diff)
        return
    cli.console.print(f"{diff['a']} → {diff['b']}: rows {diff['rows'][0]:,} → {diff['rows'][1]:,}")
    for name in diff["added"]:
        cli.console.print(f"[green]+ column {name}[/]")
    for name in diff["removed"]:
        cli.console.print(f"[red]- column {name}[/]")
    for name, (old, new) in diff["retyped"].items():
        cli.console.print(f"[yellow]~ column {name}: {old} → {new}[/]")
    table = Table("column", "statistic", diff["a"], diff["b"])
    for column, stats in diff["stats"].items():
        for stat, (old, new) in stats.items():
            table.add_row(column, stat, _fmt(old), _fmt(new))
    cli.console.print(table)
