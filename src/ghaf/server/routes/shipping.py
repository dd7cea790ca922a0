"""Audit shipping: each log sink's cursor, lag and last error; a pass run on demand."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends
from starlette.concurrency import run_in_threadpool

from ghaf.server.auth import Caller, caller
from ghaf.server.routing import ActionRouter
from ghaf.shipping import ship_once, sink_status
from ghaf.shipping.shipper import HOME_WIDE, SHIP_ACTION

router = ActionRouter(tags=["audit"])
CallerDep = Annotated[Caller, Depends(caller)]
STATUS_ACTION = "audit.sinks.read"


@router.read("/audit/sinks", action=STATUS_ACTION)
async def sinks(who: CallerDep) -> dict[str, Any]:
    """Every audit sink: cursor, head, lag (records and seconds), attempts, last error
    (auditors and SREs bound on every project)."""
    await who.authorize(STATUS_ACTION, "audit:sinks", HOME_WIDE)
    found = await run_in_threadpool(sink_status, who.platform)
    return {"sinks": [s.to_json() for s in found]}


@router.write("POST", "/audit/sinks/ship", action=SHIP_ACTION)
async def ship(who: CallerDep) -> dict[str, Any]:
    """Deliver what each sink is behind by now, backoff or not (home-wide auditors).

    Answers each sink's outcome; a sink that is down is reported, not raised."""
    run = functools.partial(ship_once, who.in_project(HOME_WIDE), who.actor, force=True)
    return (await run_in_threadpool(run)).to_json()
