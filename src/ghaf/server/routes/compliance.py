"""Compliance evidence: the ISO 27001 report, for callers allowed ``compliance.read`` on
every project (auditors and project admins bound on '*')."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import Depends, Query
from starlette.concurrency import run_in_threadpool

from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["compliance"])
CallerDep = Annotated[Caller, Depends(caller)]


@router.read("/compliance/report", action="compliance.read")
async def report(
    who: CallerDep,
    since: Annotated[str, Query(max_length=64, description="30m, 24h, 90d, 2w or ISO.")] = "90d",
    until: Annotated[str | None, Query(max_length=64, description="Default: now.")] = None,
) -> JsonResponse:
    """ISO 27001 Annex A controls mapped to live evidence (``ghaf compliance report -o
    json`` prints the same document; schema ``ghaf.compliance.report/1``)."""
    from ghaf.compliance.report import compliance_report
    from ghaf.cost.report import parse_since, parse_until
    from ghaf.metadata.base import utcnow

    now = utcnow()
    start, end = parse_since(since, now), parse_until(until, now)
    document = await run_in_threadpool(
        functools.partial(compliance_report, who.platform, who.actor, since=start, until=end)
    )
    return JsonResponse(document)
