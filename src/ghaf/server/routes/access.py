"""Who may do what: tokens and role bindings per project; principals and groups (home-wide);
and who the caller is."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.access.bindings import (
    add_group_member,
    bind_role,
    create_principal,
    list_bindings,
    unbind_role,
)
from ghaf.access.principals import list_principals
from ghaf.access.tokens import create_token, get_token, list_tokens, revoke_token
from ghaf.security.rbac import ALL_PROJECTS
from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["access"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^([a-z0-9][a-z0-9_-]{0,127}|\*)$"
_PRINCIPAL = r"^[A-Za-z0-9@._:+-]{1,256}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,199}$"
ProjectQuery = Annotated[str | None, Query(pattern=_PROJECT)]
PrincipalQuery = Annotated[str | None, Query(pattern=_PRINCIPAL)]


class NewToken(BaseModel):
    principal: str = Field(pattern=_PRINCIPAL)
    project: str = Field(pattern=_PROJECT)
    roles: list[str] = Field(default_factory=list, max_length=64)
    expires_in_days: float = Field(default=30.0, gt=0, le=366)
    description: str = Field(default="", max_length=1024)


class NewBinding(BaseModel):
    subject: str = Field(pattern=_PRINCIPAL)
    role: str = Field(pattern=r"^[a-z_]{1,64}$")
    project: str = Field(pattern=_PROJECT)
    effect: str = Field(default="allow", pattern=r"^(allow|deny)$")


class NewPrincipal(BaseModel):
    name: str = Field(pattern=_NAME)
    kind: str = Field(default="user", pattern=r"^(user|group|service)$")
    description: str = Field(default="", max_length=1024)


class NewMember(BaseModel):
    member: str = Field(pattern=_NAME)


@router.own("/whoami")
async def whoami(who: CallerDep) -> dict[str, Any]:
    """The caller as the server proved it: name, kind, credential, roles."""
    actor = who.actor
    credential = actor.credential.describe() if actor.credential else None
    roles = sorted(r for r in actor.roles if not r.startswith("@"))
    return {"name": actor.name, "kind": actor.kind, "credential": credential, "roles": roles}


@router.write("POST", "/tokens", action="token.create", status_code=201)
async def new_token(body: NewToken, who: CallerDep) -> JsonResponse:
    """Mint a token for a principal in a project; its secret is in this answer only."""
    made = await run_in_threadpool(
        functools.partial(
            create_token,
            who.in_project(body.project),
            who.actor,
            body.principal,
            project=body.project,
            roles=tuple(body.roles),
            ttl=timedelta(days=body.expires_in_days),
            description=body.description,
        )
    )
    return JsonResponse({"token": made.secret, "info": made.info}, 201)


@router.read("/tokens", action="token.read")
async def tokens(
    who: CallerDep, project: ProjectQuery = None, principal: PrincipalQuery = None
) -> JsonResponse:
    """Tokens of a project, or of every project the caller may read them in; never
    their secrets."""
    if project is not None:
        await who.authorize("token.read", f"tokens:{project}", project)
    found = await run_in_threadpool(
        functools.partial(list_tokens, who.platform, project=project, principal=principal)
    )
    allowed = set(who.readable("token.read", [t.project for t in found]))
    return JsonResponse({"tokens": [t for t in found if t.project in allowed]})


@router.write("DELETE", "/tokens/{token_id}", action="token.revoke")
async def revoke(token_id: str, who: CallerDep) -> Any:
    """Revoke a token: the next request carrying it is refused."""
    info = await run_in_threadpool(get_token, who.platform, token_id)
    missing, hint = f"token {token_id!r} does not exist", "ghaf tokens list"  # get_token's
    # Another project's token reads as missing; one of the caller's project may still be
    # refused by the service (a viewer may read tokens but not revoke them).
    await who.authorize_hidden(
        "token.read", f"tokens:{info.project}", info.project, missing=missing, hint=hint
    )
    return await run_in_threadpool(
        functools.partial(
            revoke_token, who.in_project(info.project), who.actor, token_id, project=info.project
        )
    )


@router.read("/roles", action="role.read")
async def roles(
    who: CallerDep, project: ProjectQuery = None, subject: PrincipalQuery = None
) -> JsonResponse:
    """A project's role bindings (and the home-wide ones that reach it), or those of
    every project the caller may read them in."""
    if project is not None:
        await who.authorize("role.read", f"roles:{project}", project)
    found = await run_in_threadpool(
        functools.partial(list_bindings, who.platform, project=project, subject=subject)
    )
    if project is None:
        allowed = set(who.readable("role.read", [b.project for b in found]))
        found = [b for b in found if b.project in allowed]
    return JsonResponse({"bindings": found})


@router.write("POST", "/roles", action="role.bind", status_code=201)
async def bind(body: NewBinding, who: CallerDep) -> JsonResponse:
    """Bind a role to a principal or group in a project."""
    made = await run_in_threadpool(
        functools.partial(
            bind_role,
            who.in_project(body.project),
            who.actor,
            body.subject,
            body.role,
            project=body.project,
            effect=body.effect,  # type: ignore[arg-type]
        )
    )
    return JsonResponse(made, 201)


@router.write("DELETE", "/roles", action="role.unbind")
async def unbind(
    who: CallerDep, subject: str, role: str, project: str, effect: str = "allow"
) -> dict[str, Any]:
    """Remove a role binding."""
    await run_in_threadpool(
        functools.partial(
            unbind_role,
            who.in_project(project),
            who.actor,
            subject,
            role,
            project=project,
            effect=effect,  # type: ignore[arg-type]
        )
    )
    return {"subject": subject, "role": role, "project": project, "deleted": True}


@router.read("/principals", action="role.read")
async def principals(
    who: CallerDep, kind: Annotated[str | None, Query(pattern=r"^(user|group|service)$")] = None
) -> JsonResponse:
    """Registered users, groups (with their members) and service accounts (home-wide
    administrators only: principals belong to no one project)."""
    await who.authorize("role.read", "principals", ALL_PROJECTS)
    found = await run_in_threadpool(functools.partial(list_principals, who.platform, kind=kind))
    return JsonResponse({"principals": found})


@router.write("POST", "/principals", action="principal.create", status_code=201)
async def new_principal(body: NewPrincipal, who: CallerDep) -> dict[str, Any]:
    """Register a user, group or service account (home-wide)."""
    await run_in_threadpool(
        functools.partial(
            create_principal,
            who.in_project(ALL_PROJECTS),
            who.actor,
            body.name,
            kind=body.kind,  # type: ignore[arg-type]
            description=body.description,
        )
    )
    return {"name": body.name, "kind": body.kind, "description": body.description}


@router.write("POST", "/groups/{group}/members", action="group.add_member", status_code=201)
async def new_member(
    group: Annotated[str, PathParam(pattern=_NAME)], body: NewMember, who: CallerDep
) -> dict[str, Any]:
    """Add a member to a group: the group's bindings then apply to it (home-wide)."""
    await run_in_threadpool(
        add_group_member, who.in_project(ALL_PROJECTS), who.actor, group, body.member
    )
    return {"group": group, "member": body.member}
