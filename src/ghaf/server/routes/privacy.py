"""Right to erasure and retention over the control plane: erase a subject or a dataset,
read and verify certificates, run retention and read its rules and runs.

Both are home-wide (project ``*``): only a role bound on every project counts. A subject's
value travels in the request body, never in a URL (URLs end up in access logs).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.privacy import (
    erase_dataset,
    erase_subject,
    get_certificate,
    list_certificates,
    list_retention_runs,
    plan_retention,
    run_retention,
    verify_certificate,
)
from ghaf.privacy.retention import retention_rules
from ghaf.security.rbac import ALL_PROJECTS
from ghaf.server.auth import Caller, caller
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["privacy"])
CallerDep = Annotated[Caller, Depends(caller)]
_COLUMN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_DATASET = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(:([1-9][0-9]*|latest))?$"
CertificateId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class SubjectErasure(BaseModel):
    key_column: str = Field(pattern=_COLUMN, description="The column that identifies the subject.")
    value: str = Field(min_length=1, max_length=512, description="The subject's value in it.")
    datasets: list[Annotated[str, Field(pattern=_DATASET)]] = Field(
        default_factory=list, max_length=1000, description="Only these datasets (default: all)."
    )
    request_id_columns: list[Annotated[str, Field(pattern=_COLUMN)]] = Field(
        default_factory=list,
        max_length=100,
        description="Further columns whose values are the subject's prediction request ids.",
    )


class DatasetErasure(BaseModel):
    dataset: str = Field(pattern=_DATASET, description="NAME (every version) or NAME:VERSION.")


class RetentionRun(BaseModel):
    dry_run: bool = Field(default=False, description="Record what would go; remove nothing.")
    now: datetime | None = Field(
        default=None, description="Judge ages as of this time (ISO 8601 with a zone)."
    )


@router.write("POST", "/erasure/subject", action="erasure.subject")
async def erase_a_subject(body: SubjectErasure, who: CallerDep) -> dict[str, Any]:
    """Erase a data subject's rows everywhere; answers the signed certificate."""
    return await run_in_threadpool(
        lambda: erase_subject(
            who.in_project(ALL_PROJECTS),
            who.actor,
            body.key_column,
            body.value,
            datasets=body.datasets,
            request_id_columns=body.request_id_columns,
        )
    )


@router.write("POST", "/erasure/dataset", action="erasure.dataset")
async def erase_a_dataset(body: DatasetErasure, who: CallerDep) -> dict[str, Any]:
    """Destroy a dataset (or one version) and what was derived; the signed certificate."""
    return await run_in_threadpool(
        erase_dataset, who.in_project(ALL_PROJECTS), who.actor, body.dataset
    )


@router.read("/erasure/certificates", action="erasure.read")
async def certificates(
    who: CallerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """The newest erasure certificates (privacy officers and auditors bound on '*')."""
    await who.authorize("erasure.read", "erasure:home", ALL_PROJECTS)
    return {"certificates": await run_in_threadpool(list_certificates, who.platform, limit=limit)}


@router.read("/erasure/certificates/{certificate}", action="erasure.read")
async def certificate(certificate: CertificateId, who: CallerDep) -> dict[str, Any]:
    """One signed certificate."""
    await who.authorize("erasure.read", f"erasure:{certificate}", ALL_PROJECTS)
    return await run_in_threadpool(get_certificate, who.platform, certificate)


@router.read("/erasure/certificates/{certificate}/verify", action="erasure.read")
async def verify(certificate: CertificateId, who: CallerDep) -> dict[str, Any]:
    """Check a stored certificate: signature, audit record, the store today."""
    await who.authorize("erasure.read", f"erasure:{certificate}", ALL_PROJECTS)
    document = await run_in_threadpool(get_certificate, who.platform, certificate)
    return await run_in_threadpool(verify_certificate, who.platform, document)


@router.write("POST", "/retention/run", action="retention.run")
async def retention_run(body: RetentionRun, who: CallerDep) -> dict[str, Any]:
    """Remove what is past its retention (or, dry, record what would go)."""
    plan = await run_in_threadpool(
        lambda: run_retention(
            who.in_project(ALL_PROJECTS), who.actor, now=body.now, dry_run=body.dry_run
        )
    )
    return {"dry_run": body.dry_run, **plan.to_dict()}


@router.read("/retention", action="retention.read")
async def retention(
    who: CallerDep, runs: Annotated[int, Query(ge=0, le=1000)] = 20
) -> dict[str, Any]:
    """The rules in force, what a run now would remove, and the latest runs."""
    await who.authorize("retention.read", "retention:home", ALL_PROJECTS)
    platform = who.platform
    plan = await run_in_threadpool(plan_retention, platform)
    recent = await run_in_threadpool(list_retention_runs, platform, limit=runs) if runs else []
    return {"rules": retention_rules(platform), "due": plan.to_dict()["expired"], "runs": recent}
