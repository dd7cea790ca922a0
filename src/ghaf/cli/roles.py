"""``ghaf roles``: bind and unbind roles per project, list bindings, manage principals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ghaf.cli.context import state
from ghaf.cli.output import Output, OutputOption, emit_json, format_minute, to_jsonable

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
    cli = state(ctx)
    effect: Effect = "deny" if deny else "allow"
    client = cli.remote()
    if client is not None:
        client.bind_role(subject, role, project=project, effect=effect)
    else:
        from ghaf.access.bindings import bind_role

        bind_role(cli.platform(), cli.actor(), subject, role, project=project, effect=effect)
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
    cli = state(ctx)
    effect: Effect = "deny" if deny else "allow"
    client = cli.remote()
    if client is not None:
        client.unbind_role(subject, role, project=project, effect=effect)
    else:
        from ghaf.access.bindings import unbind_role

        unbind_role(cli.platform(), cli.actor(), subject, role, project=project, effect=effect)
    cli.console.print(f"removed {effect} {role} of {subject} in {project}", highlight=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Option(help="Only this subject's.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's (and '*').")] = None,
    output: OutputOption = Output.table,
) -> None:
    """List role bindings (against a server: those of the projects you may read them in).

    JSON: {"bindings": [{"subject", "role", "project", "effect", "created_by", "created_at"}]}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.bindings(project=project, subject=subject)
    else:
        from ghaf.access.bindings import list_bindings

        found = to_jsonable(list_bindings(cli.platform(), subject=subject, project=project))
    if output is Output.json:
        emit_json({"bindings": found})
        return
    table = Table("subject", "role", "project", "effect", "by", "at")
    for b in found:
        table.add_row(
            b["subject"],
            b["role"],
            b["project"],
            b["effect"],
            b["created_by"],
            format_minute(b["created_at"]),
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
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        client.create_principal(name, kind=kind, description=description)
    else:
        from ghaf.access.bindings import create_principal

        chosen: PrincipalKind = kind  # type: ignore[assignment]  # validated by the service
        create_principal(cli.platform(), cli.actor(), name, kind=chosen, description=description)
    cli.console.print(f"registered {kind} {name}", highlight=False)


@app.command("principals")
def principals(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option(help="Only users, groups or services.")] = None,
    output: OutputOption = Output.table,
) -> None:
    """List users, groups (with their members) and service accounts.

    JSON: {"principals": [{"name", "kind", "description", "created_by", "created_at",
    "members"}]}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.principals(kind)
    else:
        from ghaf.access.principals import list_principals

        found = to_jsonable(list_principals(cli.platform(), kind=kind))
    if output is Output.json:
        emit_json({"principals": found})
        return
    table = Table("name", "kind", "members", "description", "by", "at")
    for p in found:
        table.add_row(
            p["name"],
            p["kind"],
            ", ".join(p["members"]),
            p["description"],
            p["created_by"],
            format_minute(p["created_at"]),
        )
    cli.console.print(table)


@app.command("add-member")
def add_member(ctx: typer.Context, group: str, member: str) -> None:
    """Add MEMBER to GROUP."""
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        client.add_group_member(group, member)
    else:
        from ghaf.access.bindings import add_group_member

        add_group_member(cli.platform(), cli.actor(), group, member)
    cli.console.print(f"added {member} to {group}", highlight=False)
