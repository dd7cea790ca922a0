"""Live routing: running servers follow their deployment record without a restart.

Each worker polls its deployments' ``revision`` (one indexed lookup per deployment
every ``interval`` seconds, off the event loop); on a new revision it reads the record
and swaps in the new weights, shadow and experiment assignment between two requests.
A revision that names a version the worker has not loaded is loaded first, off the
event loop, exactly as at start (downloaded, its signature and release checked, the
release policy asked whether it may be served, warmed), then applied; until then, and
if it cannot be loaded, the worker keeps serving what it has and says why in the log
and the model's metadata (a failed load is tried again after :data:`RELOAD_BACKOFF_S`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ghaf.errors import InvalidInputError
from ghaf.platform import Platform
from ghaf.serving.deployments import Deployment as DeploymentRecord
from ghaf.serving.deployments import deployment_revision, get_deployment
from ghaf.serving.traffic import UNIT_HEADER, Assignment, Route, TrafficSplit

RELOAD_BACKOFF_S = 30.0
"""How long after a version failed to load a worker tries it again."""


def _version(ref: str, model: str) -> str:
    name, _, version = ref.rpartition(":")
    if name != model:
        raise InvalidInputError(f"{ref} is not a version of {model!r}", hint="serve it")
    return version


def versions_needed(record: DeploymentRecord, model: str) -> set[str]:
    """Every version of ``model`` that ``record`` routes to, shadows or experiments on."""
    needed = {_version(ref, model) for ref in record.models}
    if record.shadow:
        needed.add(_version(record.shadow, model))
    routing = record.routing or {}
    needed.update(_version(ref, model) for ref in routing.get("weights", {}))
    needed.update(_version(ref, model) for ref in routing.get("shadows", ()))
    if routing.get("control"):
        needed.add(_version(str(routing["control"]), model))
    return needed


def route_of(record: DeploymentRecord, model: str, loaded: Mapping[str, Any]) -> Route:
    """The :class:`Route` a deployment record asks of the served ``model``.

    Raises:
        InvalidInputError: the record names a version not in ``loaded`` (not applied).
    """
    weights = {_version(ref, model): w for ref, w in record.models.items()}
    shadows = [_version(record.shadow, model)] if record.shadow else []
    assignment = None
    unit_kind, unit_name = "header", UNIT_HEADER
    routing = record.routing
    if routing is not None:
        variants = {_version(ref, model): float(w) for ref, w in routing["weights"].items()}
        assignment = Assignment(
            str(routing["experiment"]),
            str(routing["salt"]),
            variants,
            holdout=float(routing.get("holdout", 0.0)),
            control=_version(str(routing["control"]), model),
        )
        unit = routing.get("unit") or {}
        unit_kind, unit_name = str(unit.get("kind", "header")), str(unit.get("name", UNIT_HEADER))
        shadows += [_version(ref, model) for ref in routing.get("shadows", ())]
    needed = {*weights, *shadows, *(assignment.weights if assignment else ())}
    missing = sorted(needed - set(loaded))
    if missing:
        raise InvalidInputError(
            f"revision {record.revision} of deployment {record.name!r} needs version(s) "
            f"{', '.join(missing)} of {model!r}, which this server has not loaded",
            hint=f"restart ghaf serve with them: ghaf serve {model}:{missing[0]} ...",
        )
    live = {v: w for v, w in weights.items() if w > 0} or weights
    split = TrafficSplit(live, shadow=None)
    return Route(
        record.revision, split, assignment, unit_kind, unit_name, tuple(dict.fromkeys(shadows))
    )


class DeploymentWatcher:
    """Reads deployment records for a server: ``names`` maps served model -> record name."""

    def __init__(self, platform: Platform, names: Mapping[str, str], interval: float = 1.0) -> None:
        self.platform = platform
        self.names = dict(names)
        self.interval = interval

    def changed(self, revisions: Mapping[str, int | None]) -> dict[str, DeploymentRecord]:
        """The records (by served model) whose revision differs from ``revisions``.

        Blocking (database reads): call it off the event loop.
        """
        found: dict[str, DeploymentRecord] = {}
        for model, record_name in self.names.items():
            revision = deployment_revision(self.platform, record_name)
            if revision is not None and revision != revisions.get(model):
                found[model] = get_deployment(self.platform, record_name)
        return found
