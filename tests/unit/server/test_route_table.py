"""The control plane's route table held to the spine's: what each route declares is true.

Every write route names a governed action (a service function that authorizes, acts and
audits); every operation in the OpenAPI document carries its action; a governed action
without a route is listed in ``NOT_YET_ROUTED`` (issue 18 builds them) or, with the
reason, in ``NOT_OVER_HTTP``; a route for a listed action fails until it is taken off.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import FastAPI

import ghaf
from ghaf.platform import Platform
from ghaf.server.app import create_app
from ghaf.server.routing import ROUTES, SELF
from ghaf.spine import WRITE_OPERATIONS

NOT_YET_ROUTED: set[str] = set()
"""Governed actions the server does not offer yet: each still needs its route."""
NOT_OVER_HTTP = {
    "home.init": "makes the home the server runs on: it exists before any server does",
    "home.transfer": "hands the home's files to another OS account (a chown on the server's "
    "disk); an HTTP caller proves a token, never an OS account",
    "backup.restore": "writes a new home (its database, artifact store and key files) on "
    "the machine that runs it, from a backup the restorer holds with the KEK; a server "
    "runs on a home that already exists, and a client must not pick its paths",
    "home.login_link": "mints a one-time UI login link for the home's owner, proven by the OS "
    "account that runs `ghaf ui login-link`; an HTTP caller proves a token, never an OS account",
    "home.login_link_open": "the browser's door, not the API's: GET /ui/login/link/{link} "
    "burns the link and sets the UI's session cookie (ghaf.ui.login)",
    "prediction.export": "writes batch scores to a file on the scoring machine (resource "
    "file:PATH); over HTTP the client would pick a path on the server",
    **{
        f"job.{verb}": "a dispatcher's own bookkeeping (ghaf jobs work), written where its "
        "executor slots run: claiming, finishing, marking alive and taking back a dead "
        "dispatcher's jobs; callers queue, cancel and reorder jobs over HTTP"
        for verb in ("claim", "finish", "heartbeat", "reclaim")
    },
    **{
        f"deployment.retrain_{hop}": "a hop of the closed loop, written by the loop itself "
        "where the monitors run (ghaf monitor run --loop) on an alert it received; a caller "
        "sets the policy (deployment.retrain_set) and reads the hops on the incident"
        for hop in ("trigger", "record", "gates", "deploy")
    },
    "slo.scrape": "a pass of the live loop over a scheduled SLO (the samples it read, the "
    "windows firing), written by the loop itself in ghaf server or ghaf monitor run --loop; "
    "a caller schedules it (slo.schedule) and reads the schedules",
}
"""Governed actions that stay off the control plane by design, and why."""


def _every_governed_action() -> set[str]:
    for info in pkgutil.walk_packages(ghaf.__path__, "ghaf."):
        if not info.name.startswith(
            ("ghaf.__main__", "ghaf.cli", "ghaf.testing", "ghaf.demo", "ghaf.metadata.m")
        ):
            importlib.import_module(info.name)
    return set(WRITE_OPERATIONS)


def test_every_write_route_names_a_governed_action() -> None:
    governed = _every_governed_action()
    writes = {r.action for r in ROUTES if r.writes}
    assert writes <= governed, f"routes declare unknown actions: {sorted(writes - governed)}"
    reads = {r.action for r in ROUTES if not r.writes}
    assert not reads & governed, "a read route declares a write action"


def test_every_governed_action_has_a_route_or_is_listed_as_not_yet_routed() -> None:
    governed = _every_governed_action()
    routed = {r.action for r in ROUTES if r.writes}
    unrouted = NOT_YET_ROUTED | set(NOT_OVER_HTTP)
    assert governed >= unrouted, f"unknown actions listed: {unrouted - governed}"
    assert not routed & unrouted, f"routed now, take off the lists: {sorted(routed & unrouted)}"
    assert governed - routed - unrouted == set(), (
        f"governed actions without a route: {sorted(governed - routed - unrouted)}"
    )


def test_the_openapi_document_declares_each_operation_s_action(platform: Platform) -> None:
    api = create_app(platform).app
    assert isinstance(api, FastAPI)
    document = api.openapi()
    assert document["openapi"].startswith("3.1")
    declared = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert "x-ghaf-action" in operation, f"{method.upper()} {path} declares no action"
            declared[(method.upper(), path)] = operation["x-ghaf-action"]
    assert declared == {(r.method, r.path): r.action for r in ROUTES}
    assert all(r.action != SELF or r.method == "GET" for r in ROUTES)
