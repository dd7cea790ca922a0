"""``ghaf policy code``: the modules a project's custom model code may import (none: off)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghaf.cli.context import CliState, state
from ghaf.cli.output import emit_json
from ghaf.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

app = typer.Typer(
    help="The code policy: custom model code is off until a model approver allows modules.",
    no_args_is_help=True,
)

ProjectOption = Annotated[
    str | None, typer.Option(help="Project (default: settings.project).", show_default=False)
]
ReasonOption = Annotated[str, typer.Option(help="Why (kept in the audit record).")]


def _print(cli: CliState, policy: dict[str, Any]) -> None:
    if not policy["enabled"]:
        cli.console.print(f"project {policy['project']}: custom model code is off", highlight=False)
        return
    cli.console.print(
        f"project {policy['project']}: custom model code may import "
        f"{', '.join(policy['modules'])} (version {policy['version']}, set by {policy['set_by']})",
        highlight=False,
    )


def _change(
    cli: CliState,
    project: str | None,
    *,
    allow: Sequence[str] = (),
    revoke: Sequence[str] = (),
    revoke_all: bool = False,
    reason: str = "",
) -> dict[str, Any]:
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        if not (allow or revoke or revoke_all):  # as the service says it, before a request
            raise InvalidInputError(
                "name the modules to allow or revoke",
                hint="ghaf policy code allow numpy --reason ...",
            )
        return client.change_code_policy(
            where, allow=allow, revoke=revoke, revoke_all=revoke_all, reason=reason
        )
    from ghaf.registry.code_policy import change_code_policy
    from ghaf.registry.policy_documents import code_document

    policy = change_code_policy(
        cli.platform(),
        cli.actor(),
        where,
        allow=allow,
        revoke=revoke,
        revoke_all=revoke_all,
        reason=reason,
    )
    return code_document(policy)


@app.command("show")
def show(
    ctx: typer.Context,
    project: ProjectOption = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Print the code policy in force.

    JSON: {"project", "version", "enabled", "modules": [str], "set_by", "never_allowed": [str]}.
    """
    if output not in ("text", "json"):
        raise InvalidInputError(f"--output {output!r} is not supported", hint="use text or json")
    cli = state(ctx)
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        policy = client.code_policy(where)
    else:
        from ghaf.registry.code_policy import get_code_policy
        from ghaf.registry.policy_documents import code_document

        policy = code_document(get_code_policy(cli.platform(), where))
    if output == "json":
        emit_json(policy)
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
    cli = state(ctx)
    _print(cli, _change(cli, project, allow=modules, reason=reason))


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
    cli = state(ctx)
    policy = _change(cli, project, revoke=modules or (), revoke_all=all_modules, reason=reason)
    _print(cli, policy)
