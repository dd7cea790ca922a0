"""``ghaf policy check``: explain a residency or RBAC decision without acting."""

from __future__ import annotations

from typing import Annotated

import typer

from ghaf.cli.context import state
from ghaf.data.residency import object_tags
from ghaf.errors import InvalidInputError, PermissionDeniedError, PolicyViolationError
from ghaf.security.identity import Actor
from ghaf.security.rbac import RbacAuthorizer
from ghaf.security.residency import decide_residency

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
    cli = state(ctx)
    platform = cli.platform()
    if region is not None:
        if (obj is None) == (not tag):
            raise InvalidInputError(
                "give exactly one of --object or --tag with --region",
                hint="e.g. ghaf policy check --object dataset:customers:1 --region eu-west-1",
            )
        tags = object_tags(platform, obj) if obj is not None else list(tag or ())
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
    decision = authorizer.decide(Actor(principal), action, where)
    verdict = "ALLOWED" if decision.allowed else "REFUSED"
    held = ", ".join(decision.roles) or "none"
    cli.console.print(
        f"{verdict}: {principal} {action} in {where}\n  roles there: {held}\n  {decision.reason}",
        highlight=False,
    )
    if not decision.allowed:
        roles = ", ".join(authorizer.policy.allowed_roles(action)) or "the home admin only"
        raise PermissionDeniedError(
            f"RBAC refuses {action} to {principal} in {where}", hint=f"roles that may: {roles}"
        )
