"""``ghaf policy``: explain residency and RBAC decisions; the release and code policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ghaf.cli import code_policy
from ghaf.cli.context import state
from ghaf.cli.output import emit_json
from ghaf.errors import InvalidInputError, PermissionDeniedError, PolicyViolationError

app = typer.Typer(help="Explain what the policies decide.", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    region: Annotated[str | None, typer.Option(help="Target region to store or copy to.")] = None,
    obj: Annotated[
        str | None, typer.Option("--object", help="Lineage node, e.g. dataset:customers:3.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeat).")] = None,
    principal: Annotated[str | None, typer.Option(help="Who (RBAC check).")] = None,
    action: Annotated[str | None, typer.Option(help="Action, e.g. model.promote.")] = None,
    project: Annotated[str | None, typer.Option(help="Project of the action.")] = None,
) -> None:
    """Residency: --region with --object or --tag. RBAC: --principal and --action.

    Exits 0 when allowed, 7 (residency) or 6 (RBAC) when refused.
    """
    from ghaf.features.residency import lineage_tags  # DuckDB and ghaf.data
    from ghaf.security.identity import Actor
    from ghaf.security.rbac import RbacAuthorizer
    from ghaf.security.residency import decide_residency

    cli = state(ctx)
    platform = cli.platform()
    if region is not None:
        if (obj is None) == (not tag):
            raise InvalidInputError(
                "give exactly one of --object or --tag with --region",
                hint="e.g. ghaf policy check --object dataset:customers:1 --region eu-west-1",
            )
        tags = lineage_tags(platform, obj) if obj is not None else list(tag or ())
        residency = decide_residency(platform.settings.security.residency, tags, region)
        cli.console.print(residency.explain(), highlight=False)
        if not residency.allowed:
            raise PolicyViolationError(
                f"residency refuses {obj or ', '.join(tag or ())} in {region}",
                hint="see the explanation above",
            )
        return
    if principal is None or action is None:
        raise InvalidInputError(
            "give --region (residency) or --principal and --action (RBAC)",
            hint="ghaf policy check --principal alice --action model.promote --project fraud",
        )
    authorizer = platform.spine.authorizer
    if not isinstance(authorizer, RbacAuthorizer):
        raise InvalidInputError("this platform does not use the RBAC authorizer")
    where = project or platform.default_project
    # What the principal's bindings allow: the explanation, not an act, so no credential.
    decision = authorizer.policy.decide(authorizer.grants(Actor(principal), where), action)
    verdict = "ALLOWED" if decision.allowed else "REFUSED"
    held = ", ".join(decision.roles) or "none"
    cli.console.print(
        f"{verdict}: {principal} {action} in {where}\n  roles there: {held}\n  {decision.reason}",
        highlight=False,
    )
    if not decision.allowed:
        roles = ", ".join(authorizer.policy.allowed_roles(action)) or "the home's owner only"
        raise PermissionDeniedError(
            f"RBAC refuses {action} to {principal} in {where}", hint=f"roles that may: {roles}"
        )


release_app = typer.Typer(
    help="The release policy: what a version needs before a protected alias or stage.",
    no_args_is_help=True,
)
app.add_typer(release_app, name="release")
app.add_typer(code_policy.app, name="code")


@release_app.command("show")
def release_show(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option(help="Project (default: settings.project).")
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="Print the built-in policy.")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json.")] = "yaml",
) -> None:
    """Print the release policy in force (its YAML, or JSON with its version).

    JSON: {"project", "version" (0: the built-in default), "created_by", "policy", "text"}.
    """
    if output not in ("yaml", "json"):
        raise InvalidInputError(f"--output {output!r} is not supported", hint="use yaml or json")
    cli = state(ctx)
    if default:
        from ghaf.registry.release import DEFAULT_POLICY

        typer.echo(DEFAULT_POLICY, nl=False)
        return
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        body = client.release_policy(where)
    else:
        from ghaf.registry.policy_documents import release_document
        from ghaf.registry.release import get_release_policy

        body = release_document(get_release_policy(cli.platform(), where))
    if output == "json":
        emit_json(body)
        return
    origin = "built-in default" if body["version"] == 0 else f"version {body['version']}"
    typer.echo(f"# release policy of project {body['project']} ({origin})")
    typer.echo(body["text"], nl=not body["text"].endswith("\n"))


@release_app.command("set")
def release_set(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Release policy YAML file.")],
    project: Annotated[
        str | None, typer.Option(help="Project (default: settings.project).")
    ] = None,
) -> None:
    """Store a new version of the release policy (checked first; governed and audited)."""
    from ghaf.errors import NotFoundError
    from ghaf.registry.release import parse_release_policy

    cli = state(ctx)
    if not path.is_file():
        raise NotFoundError(f"release policy file {path} does not exist", hint="check the path")
    text = path.read_text(encoding="utf-8")
    parse_release_policy(text, str(path))
    where = project or cli.settings.project
    client = cli.remote()
    if client is not None:
        version = client.set_release_policy(where, text)["version"]
    else:
        from ghaf.registry.release import set_release_policy

        version = set_release_policy(cli.platform(), cli.actor(), where, text).version
    cli.console.print(f"release policy of project {where} is now version {version}")
