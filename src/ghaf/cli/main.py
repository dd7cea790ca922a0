"""The ``ghaf`` command: a thin door onto the services; errors become one line and an exit code."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.exit_codes import exit_code_for
from ghaf.errors import GhafError
from ghaf.logs import bind_ids, configure_logging, new_id
from ghaf.settings import load_settings

app = typer.Typer(
    name="ghaf",
    help="Ghaf: a governed MLOps platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("projects", "ghaf.cli.projects:app"),
    ("runs", "ghaf.cli.runs:app"),
    ("models", "ghaf.cli.models:app"),
    ("data", "ghaf.cli.data:app"),
    ("lineage", "ghaf.cli.lineage:app"),
    ("keys", "ghaf.cli.keys:app"),
    ("audit", "ghaf.cli.audit:app"),
    ("gate", "ghaf.cli.gate:app"),
    ("pipelines", "ghaf.cli.pipelines:app"),
    ("monitor", "ghaf.cli.monitor:app"),
    ("features", "ghaf.cli.features:app"),
    ("tokens", "ghaf.cli.tokens:app"),
    ("roles", "ghaf.cli.roles:app"),
    ("policy", "ghaf.cli.policy:app"),
    ("certs", "ghaf.cli.certs:app"),
)
"""Sub-command groups: name -> "module:typer_app", imported when the CLI starts."""


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="Platform home (default: GHAF_HOME or ~/.ghaf).")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="human or json log lines.")
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO...")] = None,
) -> None:
    """Build the settings once and hand them to the command."""
    settings = load_settings(home=home, log_format=log_format, log_level=log_level)
    configure_logging(settings.log_format, settings.log_level)
    ctx.obj = CliState(settings)
    ctx.call_on_close(ctx.obj.close)


@app.command()
def init(ctx: typer.Context) -> None:
    """Create the platform home and migrate the metadata store (safe to re-run)."""
    from ghaf.home import init_home

    cli = state(ctx)
    init_home(cli.settings).close()
    cli.console.print(f"initialized Ghaf home at {cli.settings.home}")


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Check every configured backend; say what is wrong and how to fix it."""
    from ghaf.home import run_doctor

    cli = state(ctx)
    checks = run_doctor(cli.settings)
    table = Table("check", "status", "detail", "fix")
    for check in checks:
        table.add_row(check.name, "ok" if check.ok else "FAIL", check.detail, check.fix)
    cli.console.print(table)
    if not all(check.ok for check in checks):
        raise typer.Exit(9)


@app.command()
def version() -> None:
    """Print Ghaf's version."""
    from importlib.metadata import version as pkg_version

    typer.echo(pkg_version("ghaf"))


def _register_subcommands() -> None:
    for name, target in SUBCOMMANDS:
        module_name, _, attr = target.partition(":")
        app.add_typer(getattr(importlib.import_module(module_name), attr), name=name)


_register_subcommands()
importlib.import_module("ghaf.cli.demo")
importlib.import_module("ghaf.cli.serve")
importlib.import_module("ghaf.cli.verify")
importlib.import_module("ghaf.cli.identity")


def run() -> None:
    """Entry point: run the app, turning Ghaf errors into one line and an exit code.

    Click handles usage errors itself (exit 2); everything Ghaf raises on purpose
    becomes ``error: <headline>`` plus a hint line, with the code from the one table.
    """
    err = Console(stderr=True)
    with bind_ids(request_id=new_id()):
        try:
            app()
        except GhafError as exc:
            err.print(f"[bold red]error:[/] {exc.headline}", highlight=False, soft_wrap=True)
            if exc.hint:
                err.print(f"  hint: {exc.hint}", highlight=False, soft_wrap=True)
            sys.exit(exit_code_for(exc))
