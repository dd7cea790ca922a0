"""``ghaf data``: ingest, validate, list, show and diff dataset versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ghaf.cli.context import state

app = typer.Typer(help="Datasets: ingest, validate, versions, show, diff.", no_args_is_help=True)

ContractOpt = Annotated[Path | None, typer.Option("--contract", "-c", help="Data contract (YAML).")]
QueryOpt = Annotated[str | None, typer.Option("--query", help="SQL query for a SQL source.")]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", help="Text encoding of a CSV file (utf-16, latin-1...).")
]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="File, delta:PATH, iceberg:URL#t or sql:URL.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    contract: ContractOpt = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = "utf-8",
) -> None:
    """Ingest SOURCE as a new version of dataset NAME (checked against a contract)."""
    from ghaf.data import ingest

    cli = state(ctx)
    platform = cli.platform()
    dv = ingest(
        platform, cli.actor(), source, name, contract=contract, query=query, encoding=encoding
    )
    cli.console.print(
        f"{dv.ref}: {dv.num_rows:,} rows, {len(dv.schema)} columns, digest {dv.digest[:12]}"
    )
    if dv.validation:
        cli.console.print(f"contract: {dv.validation['summary']}")


@app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="Dataset NAME[:V] or a source (file, URL).")],
    contract: Annotated[Path, typer.Option("--contract", "-c", help="Data contract (YAML).")],
    fmt: Annotated[str, typer.Option("--format", help="table, json or html.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    query: QueryOpt = None,
    encoding: EncodingOpt = "utf-8",
) -> None:
    """Check TARGET against a contract; exits 3 when an error-severity check fails."""
    from ghaf.data import ContractViolationError, validate
    from ghaf.errors import InvalidInputError

    if fmt not in ("table", "json", "html"):
        raise InvalidInputError(f"--format {fmt!r} is unknown", hint="use table, json or html")
    cli = state(ctx)
    report = validate(cli.platform(), target, contract, query=query, encoding=encoding)
    if fmt == "table":
        cli.console.print(report.to_table())
    text = report.to_json() if fmt == "json" else report.to_html() if fmt == "html" else None
    if text is not None:
        if output is not None:
            output.write_text(text, encoding="utf-8")
            cli.console.print(f"wrote {output}")
        else:
            typer.echo(text)
    if not report.ok:
        raise ContractViolationError(report.dataset or target, report)


@app.command("versions")
def versions_cmd(ctx: typer.Context, name: str) -> None:
    """List the versions of dataset NAME."""
    from ghaf.data import list_versions
    from ghaf.errors import NotFoundError

    cli = state(ctx)
    versions = list_versions(cli.platform(), name)
    if not versions:
        raise NotFoundError(f"dataset {name!r} does not exist", hint="ghaf data ingest ...")
    table = Table("version", "rows", "columns", "digest", "created", "by", "source")
    for v in versions:
        table.add_row(
            str(v.version),
            f"{v.num_rows:,}",
            str(len(v.schema)),
            v.digest[:12],
            v.created_at.isoformat(timespec="seconds"),
            v.created_by,
            v.source,
        )
    cli.console.print(table)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME or NAME:VERSION.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a version's schema, tags and column profile."""
    from ghaf.data import get_dataset

    cli = state(ctx)
    dv = get_dataset(cli.platform(), ref)
    if as_json:
        body = {
            "name": dv.name,
            "version": dv.version,
            "digest": dv.digest,
            "rows": dv.num_rows,
            "residency": dv.residency,
            "source": dv.source,
            "inputs": list(dv.inputs),
            "schema": {f.name: str(f.type) for f in dv.schema},
            "column_tags": dv.column_tags,
            "profile": dv.profile,
        }
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    cli.console.print(
        f"[bold]{dv.ref}[/] {dv.num_rows:,} rows, digest {dv.digest}, "
        f"residency {dv.residency or '-'}, source {dv.source}"
    )
    table = Table("column", "type", "tag", "nulls", "distinct", "min", "max", "mean", "std")
    for field in dv.schema:
        p = dv.profile.get("columns", {}).get(field.name, {})
        table.add_row(
            field.name,
            str(field.type),
            dv.column_tags.get(field.name, ""),
            _fmt(p.get("nulls")),
            _fmt(p.get("distinct")),
            f"({p['redacted']}: no values kept)" if p.get("redacted") else _fmt(p.get("min")),
            _fmt(p.get("max")),
            _fmt(p.get("mean")),
            _fmt(p.get("std")),
        )
    cli.console.print(table)


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="NAME:V1")],
    b: Annotated[str, typer.Argument(help="NAME:V2")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Schema and profile changes from version A to version B."""
    from ghaf.data.diff import diff_versions

    cli = state(ctx)
    diff = diff_versions(cli.platform(), a, b)
    if as_json:
        typer.echo(json.dumps(diff.to_dict(), indent=2, default=str))
        return
    cli.console.print(f"{diff.a} → {diff.b}: rows {diff.rows[0]:,} → {diff.rows[1]:,}")
    for name in diff.added:
        cli.console.print(f"[green]+ column {name}[/]")
    for name in diff.removed:
        cli.console.print(f"[red]- column {name}[/]")
    for name, (old, new) in diff.retyped.items():
        cli.console.print(f"[yellow]~ column {name}: {old} → {new}[/]")
    table = Table("column", "statistic", diff.a, diff.b)
    for column, stats in diff.stats.items():
        for stat, (old, new) in stats.items():
            table.add_row(column, stat, _fmt(old), _fmt(new))
    cli.console.print(table)
