"""The ``ghaf`` command: a thin door onto the services; errors become one line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ghaf.cli import (
    admin,
    audit,
    certs,
    data,
    demo,
    features,
    gate,
    gc,
    identity,
    install,
    keys,
    lineage,
    models,
    monitor,
    pipelines,
    policy,
    projects,
    roles,
    runs,
    serve,
    tokens,
    verify,
)
from ghaf.cli.context import CliState
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

COMMANDS: tuple[tuple[str, typer.Typer | Callable[..., None]], ...] = (
    ("init", install.init),
    ("doctor", install.doctor),
    ("gc", gc.gc),
    ("version", install.version),
    ("admin", admin.app),
    ("projects", projects.app),
    ("runs", runs.app),
    ("models", models.app),
    ("data", data.app),
    ("lineage", lineage.app),
    ("keys", keys.app),
    ("audit", audit.app),
    ("gate", gate.app),
    ("pipelines", pipelines.app),
    ("monitor", monitor.app),
    ("features", features.app),
    ("tokens", tokens.app),
    ("roles", roles.app),
    ("policy", policy.app),
    ("certs", certs.app),
    ("demo", demo.demo),
    ("serve", serve.serve),
    ("predict", serve.predict),
    ("verify", verify.verify),
    ("whoami", identity.whoami),
    ("login", identity.login),
)
"""Every ``ghaf`` command: a name and its Typer group or command function.

The modules hold the functions undecorated; this table is the only place they join
the root app, so an import never adds a command as a side effect.
"""


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
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Act with this credential (a Ghaf API token or OIDC JWT; or GHAF_TOKEN). "
            "Default: the home's owner, proven by the OS account.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build the settings once and hand them to the command."""
    settings = load_settings(home=home, log_format=log_format, log_level=log_level, token=token)
    configure_logging(settings.log_format, settings.log_level)
    ctx.obj = CliState(settings)
    ctx.call_on_close(ctx.obj.close)
    if settings.asserted_identity:  # refused (and audited) before any command runs
        ctx.obj.actor()


def _register(root_app: typer.Typer) -> None:
    for name, command in COMMANDS:
        if isinstance(command, typer.Typer):
            root_app.add_typer(command, name=name)
        else:
            root_app.command(name)(command)


_register(app)


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
            headline = escape(exc.headline)  # a hint like `[a, b]` is text, not markup
            err.print(f"[bold red]error:[/] {headline}", highlight=False, soft_wrap=True)
            if exc.hint:
                err.print(f"  hint: {escape(exc.hint)}", highlight=False, soft_wrap=True)
            sys.exit(exit_code_for(exc))
