"""``ghaf roles``: bind and unbind roles per project, list bindings, manage principals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state

if TYPE_CHECKING:
    from ghaf.access.bindings import Effect, PrincipalKind

app = typer.Typer(help="Roles bound to principals per project (RBAC).", no_args_is_help=True)

Deny = Annotated[bool, typer.Option("--deny", help="An explicit deny binding (deny wins).")]


@app.command("bind")
def bind(
    ctx: typer.Context,
    subject: Annotated[str, typer.Argument(help="Principal, or group:NAME.")],
    role: str,
    project: Annotated[str, typer.Option(help="Project, or '*' for every project.")],
    deny: Deny = False,
) -> None:
    """Bind ROLE to SUBJECT in a project."""
    from ghaf.access.bindings import bind_role

    cli = state(ctx)
    platform = cli.platform()
    effect: Effect = "deny" if deny else "allow"
    bind_role(platform, cli.actor(), subject, role, project=project, effect=effect)
    cli.console.print(f"{effect} {role} for {subject} in {project}", highlight=False)


@app.command("unbind")
def unbind(
    ctx: typer.Context,
    subject: str,
    role: str,
    project: Annotated[str, typer.Option(help="Project, or '*'.")],
    deny: Deny = False,
) -> None:
    """Remove a binding; it stops counting at the next request."""
    from ghaf.access.bindings import unbind_role

    cli = state(ctx)
    platform = cli.platform()
    effect: Effect = "deny" if deny else "allow"
    unbind_role(platform, cli.actor(), subject, role, project=project, effect=effect)
    cli.console.print(f"removed {effect} {role} of {subject} in {project}", highlight=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Option(help="Only this subject's.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's (and '*').")] = None,
) -> None:
    """List role bindings."""
    from ghaf.access.bindings import list_bindings

    cli = state(ctx)
    table = Table("subject", "role", "project", "effect", "by", "at")
    for b in list_bindings(cli.platform(), subject=subject, project=project):
        table.add_row(
            b.subject, b.role, b.project, b.effect, b.created_by, f"{b.created_at:%Y-%m-%d %H:%M}"
        )
    cli.console.print(table)


@app.command("roles")
def roles(ctx: typer.Context) -> None:
    """The roles of the policy and what each allows."""
    from ghaf.security.rbac import Policy

    cli = state(ctx)
    table = Table("role", "allows", "denies", "description")
    for role in Policy.default().roles.values():
        table.add_row(role.name, ", ".join(role.allow), ", ".join(role.deny), role.description)
    cli.console.print(table)


@app.command("principal")
def principal(
    ctx: typer.Context,
    name: str,
    kind: Annotated[str, typer.Option(help="user, group or service.")] = "user",
    description: Annotated[str, typer.Option(help="Who or what it is.")] = "",
) -> None:
    """Register a user, group or service account."""
    from ghaf.access.bindings import create_principal

    cli = state(ctx)
    platform = cli.platform()
    chosen: PrincipalKind = kind  # type: ignore[assignment]  # validated by the service
    create_principal(platform, cli.actor(), name, kind=chosen, description=description)
    cli.console.print(f"registered {kind} {name}", highlight=False)


@app.command("add-member")
def add_member(ctx: typer.Context, group: str, member: str) -> None:
    """Add MEMBER to GROUP."""
    from ghaf.access.bindings import add_group_member

    cli = state(ctx)
    platform = cli.platform()
    add_group_member(platform, cli.actor(), group, member)
    cli.console.print(f"added {member} to {group}", highlight=False)
