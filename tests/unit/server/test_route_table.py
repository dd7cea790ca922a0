"""The control plane's route table held to the spine's: what each route declares is true.

Every write route names a governed action (a service function that authorizes, acts and
audits); every operation in the OpenAPI document carries its action; a governed action
without a route is listed in ``NOT_YET_ROUTED`` (issue 18 builds them), and a route for
one of those fails until it is taken off the list.
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

NOT_YET_ROUTED = {
    "home.init",
    "home.transfer",
    "prediction.export",
    "run.log_inputs",
    "transform.run",
}
"""Governed actions the server does not offer yet: each still needs its route."""


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
    assert governed >= NOT_YET_ROUTED, f"unknown actions listed: {NOT_YET_ROUTED - governed}"
    assert not routed & NOT_YET_ROUTED, (
        f"routed now, take off NOT_YET_ROUTED: {sorted(routed & NOT_YET_ROUTED)}"
    )
    assert governed - routed - NOT_YET_ROUTED == set(), (
        f"governed actions without a route: {sorted(governed - routed - NOT_YET_ROUTED)}"
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
