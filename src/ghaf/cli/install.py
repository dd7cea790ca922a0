"""``ghaf init``, ``ghaf doctor`` and ``ghaf version``: set up and check this installation."""

from __future__ import annotations

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json


def init(ctx: typer.Context) -> None:
    """Create the platform home and migrate the metadata store (safe to re-run)."""
    from ghaf.home import init_home

    cli = state(ctx)
    init_home(cli.settings).close()
    cli.console.print(f"initialized Ghaf home at {cli.settings.home}")


def doctor(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Check every configured backend; say what is wrong and how to fix it (exit 9 when
    a check fails)."""
    from ghaf.home import run_doctor

    cli = state(ctx)
    checks = run_doctor(cli.settings)
    if output is Output.json:
        emit_json({"ok": all(c.ok for c in checks), "checks": checks})
    else:
        table = Table("check", "status", "detail", "fix")
        for check in checks:
            table.add_row(check.name, "ok" if check.ok else "FAIL", check.detail, check.fix)
        cli.console.print(table)
    if not all(check.ok for check in checks):
        raise typer.Exit(9)


def version(output: OutputOption = Output.table) -> None:
    """Print Ghaf's version."""
    from importlib.metadata import version as pkg_version

    if output is Output.json:
        emit_json({"version": pkg_version("ghaf")})
    else:
        typer.echo(pkg_version("ghaf"))
