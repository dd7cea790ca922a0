"""``ghaf policy code``: the modules a project's custom model code may import (none: off)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from ghaf.cli.context import CliState, state

if TYPE_CHECKING:
    from ghaf.models.custom_code import CodePolicy

app = typer.Typer(
    help="The code policy: custom model code is off until a model approver allows modules.",
    no_args_is_help=True,
)

ProjectOption = Annotated[
    str | None, typer.Option(help="Project (default: settings.project).", show_default=False)
]
ReasonOption = Annotated[str, typer.Option(help="Why (kept in the audit record).")]


def _print(cli: CliState, policy: CodePolicy) -> None:
    if not policy.enabled:
        cli.console.print(f"project {policy.project}: custom model code is off", highlight=False)
        return
    cli.console.print(
        f"project {policy.project}: custom model code may import {', '.join(policy.modules)} "
        f"(version {policy.version}, set by {policy.set_by})",
        highlight=False,
    )


@app.command("show")
def show(
    ctx: typer.Context,
    project: ProjectOption = None,
    output: Annotated[str, typer.Option("--output", help="text or json.")] = "text",
) -> None:
    """Print the code policy in force.

    JSON: {"project", "version", "enabled", "modules": [str], "set_by", "never_allowed": [str]}.
    """
    from ghaf.models.custom_code import NEVER_ALLOWED
    from ghaf.registry.code_policy import get_code_policy

    cli = state(ctx)
    policy = get_code_policy(cli.platform(), project)
    if output == "json":
        body = {
            "project": policy.project,
            "version": policy.version,
            "enabled": policy.enabled,
            "modules": list(policy.modules),
            "set_by": policy.set_by,
            "never_allowed": sorted(NEVER_ALLOWED),
        }
        typer.echo(json.dumps(body))
        return
    _print(cli, policy)


@app.command("allow")
def allow(
    ctx: typer.Context,
    modules: Annotated[list[str], typer.Argument(help="Modules; a package allows its submodules.")],
    project: ProjectOption = None,
    reason: ReasonOption = "",
) -> None:
    """Let custom model code of the project import MODULES (model_approver; audited).

    Review the code first: the import guard is not a sandbox, and an allowed module
    brings all it can do.
    """
    from ghaf.registry.code_policy import change_code_policy

    cli = state(ctx)
    where = project or cli.settings.project
    policy = change_code_policy(cli.platform(), cli.actor(), where, allow=modules, reason=reason)
    _print(cli, policy)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    modules: Annotated[list[str] | None, typer.Argument(help="Modules to take back.")] = None,
    project: ProjectOption = None,
    all_modules: Annotated[
        bool, typer.Option("--all", help="Take back every module: custom code off.")
    ] = False,
    reason: ReasonOption = "",
) -> None:
    """Take modules back (or all of them); models whose code imports them stop loading."""
    from ghaf.registry.code_policy import change_code_policy

    cli = state(ctx)
    where = project or cli.settings.project
    policy = change_code_policy(
        cli.platform(),
        cli.actor(),
        where,
        revoke=modules or (),
        revoke_all=all_modules,
        reason=reason,
    )
    _print(cli, policy)
