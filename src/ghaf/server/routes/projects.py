"""Projects: the tenants. A caller sees the projects it holds a role in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.projects import create_project
from ghaf.projects.service import get_project, list_projects
from ghaf.server.auth import Caller, caller
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["projects"])
CallerDep = Annotated[Caller, Depends(caller)]


class NewProject(BaseModel):
    """A project to create."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,127}$", description="Lower-case name.")
    description: str = Field(default="", max_length=4096)
    region: str | None = Field(default=None, max_length=64, description="Default: the home's.")


@router.read("/projects", action="project.read")
async def projects(who: CallerDep) -> dict[str, Any]:
    """The projects the caller may read."""
    every = await run_in_threadpool(list_projects, who.platform)
    allowed = set(who.readable("project.read", [p.name for p in every]))
    return {"projects": [p for p in every if p.name in allowed]}


@router.read("/projects/{name}", action="project.read")
async def project(name: str, who: CallerDep) -> Any:
    """One project."""
    await who.authorize_hidden(
        "project.read",
        f"project:{name}",
        name,
        missing=f"project {name!r} does not exist",
        hint="GET /api/v1/projects lists yours",
    )
    return await run_in_threadpool(get_project, who.platform, name)


@router.write("POST", "/projects", action="project.create", status_code=201)
async def new_project(body: NewProject, who: CallerDep) -> Any:
    """Create a project (the caller needs ``project.create`` on it)."""
    return await run_in_threadpool(
        create_project,
        who.in_project(body.name),
        who.actor,
        body.name,
        description=body.description,
        region=body.region,
    )
