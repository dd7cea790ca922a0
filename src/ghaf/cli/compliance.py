"""``ghaf compliance``: the ISO 27001 evidence report (JSON, a table, or one HTML page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, to_jsonable
from ghaf.errors import InvalidInputError

app = typer.Typer(
    help="Compliance: ISO 27001 Annex A controls mapped to live evidence, with an SBOM.",
    no_args_is_help=True,
)


@app.command("report")
def report(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option(help="Events from: 30m, 24h, 90d, 2w before now, or an ISO time.")
    ] = "90d",
    until: Annotated[
        str | None, typer.Option(help="Events until (default: now): a span before now or ISO.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the report as one HTML page here.")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Map the ISO/IEC 27001:2022 Annex A controls Ghaf serves to live evidence from the
    home, each with a status: evidence present, or a gap naming what is missing.

    Access reviews (bindings, tokens and their last use, principals never seen), change
    management (approvals, promotions, release-policy refusals, break-glass), cryptography
    (key versions, rotations, shredding), logging (the audit chain verified, its last
    checkpoint, shipping lag), privacy (retention runs, erasure certificates, pii
    datasets), data residency (policy, refusals) and a CycloneDX 1.5 SBOM of the running
    environment. Needs compliance.read on every project ('*'): auditors, project admins.
    JSON: the ``ghaf.compliance.report/1`` document, the same as ``GET
    /api/v1/compliance/report`` (see docs/reference/compliance.md).
    """
    from ghaf.compliance.html import render_html
    from ghaf.cost.report import parse_since, parse_until
    from ghaf.metadata.base import utcnow

    now = utcnow()
    start, end = parse_since(since, now), parse_until(until, now)
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        document = client.get("/compliance/report", since=start.isoformat(), until=end.isoformat())
    else:
        from ghaf.compliance.report import compliance_report

        document = to_jsonable(
            compliance_report(cli.platform(), cli.actor(), since=start, until=end)
        )
    if html is not None:
        _write(html, render_html(document))
    if output is Output.json:
        emit_json(document)
        return
    _print(cli.console, document)
    if html is not None:
        cli.console.print(f"wrote {escape(str(html))}", highlight=False)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInputError(
            f"--html {path}: cannot write the report ({exc.strerror})",
            hint="give a file in a directory you may write",
        ) from None


def _print(console: Any, document: dict[str, Any]) -> None:
    window = document["window"]
    table = Table(
        "Annex A", "control", "status", "gaps and review items",
        title=f"{document['standard']}: events from {window['since'][:16]} to "
        f"{window['until'][:16]}",
    )  # fmt: skip
    for control in document["controls"]:
        status = control["status"]
        lines = [f"gap: {g}" for g in control["gaps"]] + [f"review: {n}" for n in control["notes"]]
        table.add_row(
            ", ".join(control["controls"]),
            escape(control["title"]),
            f"[{'green' if status == 'evidence' else 'red'}]{status}[/]",
            escape("\n".join(lines)) or "-",
        )
    console.print(table)
    summary = document["summary"]
    console.print(
        f"{summary['evidence']} of {summary['controls']} controls with evidence"
        + (f"; gaps: {', '.join(summary['gaps'])}" if summary["gaps"] else ""),
        highlight=False,
    )
