"""Versioned feature definitions: plan a diff, apply it through the spine, read it back.

Each definition belongs to the project it was applied in. Names are the home's (online
stores, lineage and materializations key on them), so a name stays with the project of
its first version: another project's apply of it is refused, and what one project
applies names only its own entities and views.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from ghaf.data import get_dataset
from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError, name_taken
from ghaf.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    entity_from_spec,
    incompatibilities,
    parse_ref,
    service_from_spec,
    spec_digest,
    view_from_spec,
)
from ghaf.features.tables import FeatureDefinitionRow
from ghaf.lineage import link
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

Action = Literal["create", "update", "unchanged"]

_ON_DEMAND: dict[str, OnDemandFeatureView] = {}
"""On-demand views hold Python functions: applied ones are kept in-process by name."""
_ON_DEMAND_LOCK = threading.Lock()


@dataclass(frozen=True)
class Change:
    """What applying one definition would do."""

    kind: str
    name: str
    action: Action
    old_version: int | None
    new_version: int | None
    incompatible: tuple[str, ...]
    diff: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class StoredDefinition:
    kind: str
    name: str
    version: int
    spec: dict[str, Any]
    project: str


def _stored(row: FeatureDefinitionRow) -> StoredDefinition:
    return StoredDefinition(row.kind, row.name, row.version, orjson.loads(row.spec), row.project)


def _latest_rows(
    session: Any, kind: str | None = None, projects: Collection[str] | None = None
) -> dict[tuple[str, str], Any]:
    latest = (
        select(
            FeatureDefinitionRow.kind,
            FeatureDefinitionRow.name,
            func.max(FeatureDefinitionRow.version).label("v"),
        )
        .group_by(FeatureDefinitionRow.kind, FeatureDefinitionRow.name)
        .subquery()
    )
    query = select(FeatureDefinitionRow).join(
        latest,
        (FeatureDefinitionRow.kind == latest.c.kind)
        & (FeatureDefinitionRow.name == latest.c.name)
        & (FeatureDefinitionRow.version == latest.c.v),
    )
    if kind is not None:
        query = query.where(FeatureDefinitionRow.kind == kind)
    if projects is not None:
        query = query.where(FeatureDefinitionRow.project.in_(list(projects)))
    return {(row.kind, row.name): row for row in session.execute(query).scalars()}


def _pretty(spec: dict[str, Any]) -> list[str]:
    text = orjson.dumps(spec, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return text.splitlines()


def plan(session: Any, definitions: Sequence[Definition], project: str) -> list[Change]:
    """Compare ``definitions`` with the stored latest versions, as applied in ``project``.

    Raises:
        AlreadyExistsError: a definition's name belongs to another project.
    """
    current = _latest_rows(session)
    changes: list[Change] = []
    for item in definitions:
        spec = item.spec()
        row = current.get((spec["kind"], item.name))
        label = spec["kind"].replace("_", " ")
        if row is not None and row.project != project:
            raise name_taken(label, item.name)
        if row is None:
            diff = "\n".join(f"+ {line}" for line in _pretty(spec))
            changes.append(Change(spec["kind"], item.name, "create", None, 1, (), diff))
            continue
        if row.digest == spec_digest(spec):
            changes.append(
                Change(spec["kind"], item.name, "unchanged", row.version, row.version, (), "")
            )
            continue
        old = orjson.loads(row.spec)
        diff = "\n".join(
            line
            for line in difflib.unified_diff(_pretty(old), _pretty(spec), lineterm="", n=1)
            if not line.startswith(("---", "+++"))
        )
        problems = tuple(incompatibilities(old, spec))
        changes.append(
            Change(spec["kind"], item.name, "update", row.version, row.version + 1, problems, diff)
        )
    return changes


def plan_apply(platform: Platform, definitions: Sequence[Definition]) -> list[Change]:
    """The diff ``apply_definitions`` would make (in the platform's project), without
    changing anything."""
    with platform.read_session() as session:
        return plan(session, definitions, platform.default_project)


def _check_references(session: Any, definitions: Sequence[Definition], project: str) -> None:
    """Each view's entities, and each view a service or on-demand view reads, is one of
    ``project``'s (stored or applied with them).

    Raises:
        InvalidInputError: naming the definition and what it names.
    """
    own = set(_latest_rows(session, projects=[project]))
    own |= {(d.spec()["kind"], d.name) for d in definitions}
    # One answer whether a name is another project's or nobody's: which names other
    # projects hold is not this project's to learn.
    for item in definitions:
        if isinstance(item, FeatureView):
            for entity in item.entities:
                if ("entity", entity.name) not in own:
                    raise InvalidInputError(
                        f"feature view {item.name!r} uses entity {entity.name!r}, not defined "
                        f"in project {project!r}",
                        hint="define the Entity in the same file",
                    )
        refs = item.features if isinstance(item, FeatureService) else ()
        refs = item.sources if isinstance(item, OnDemandFeatureView) else refs
        label = "feature service" if isinstance(item, FeatureService) else "on-demand view"
        for ref in refs:
            view = parse_ref(ref)[0]
            if not {("feature_view", view), ("on_demand_feature_view", view)} & own:
                raise InvalidInputError(
                    f"{label} {item.name!r} reads {view!r}, not a feature view of project "
                    f"{project!r}",
                    hint=f"define {view!r} in project {project!r} (in the same file or before)",
                )


@governed("features.apply", resource="feature_definitions:{source}")
def apply_definitions(
    platform: Platform,
    actor: Actor,
    definitions: Sequence[Definition],
    *,
    source: str = "python",
    force: bool = False,
) -> list[Change]:
    """Register new versions of changed definitions.

    Raises:
        InvalidInputError: an incompatible change (key or type change, removed feature)
            without ``force``, or a view naming an entity that is not defined.
    """
    session = current_session()
    project = current_operation().project
    changes = plan(session, definitions, project)
    breaking = [c for c in changes if c.incompatible]
    if breaking and not force:
        first = breaking[0]
        raise InvalidInputError(
            f"incompatible change to {first.label}: {'; '.join(first.incompatible)}",
            hint="pass --force (force=True) to register it anyway; the override is audited",
        )
    _check_references(session, definitions, project)
    by_name = {(d.spec()["kind"], d.name): d for d in definitions}
    now = utcnow()
    for change in changes:
        if change.action == "unchanged":
            continue
        spec = by_name[(change.kind, change.name)].spec()
        session.add(
            FeatureDefinitionRow(
                kind=change.kind,
                name=change.name,
                project=project,
                version=change.new_version or 1,
                spec=orjson.dumps(spec, option=orjson.OPT_SORT_KEYS).decode(),
                digest=spec_digest(spec),
                created_by=actor.name,
                created_at=now,
            )
        )
    try:
        session.flush()
    except DBIntegrityError as exc:
        # Rows are never changed, so the owners plan read are the owners now; a
        # concurrent apply of the same version (another project's first, say) collides.
        raise AlreadyExistsError(
            "another apply registered the same definitions meanwhile",
            hint="apply again: the diff is taken anew",
        ) from exc
    _link_sources(platform, definitions, changes)
    details = current_operation().details
    details["changes"] = [f"{c.action} {c.label} v{c.new_version}" for c in changes]
    if breaking:
        details["forced"] = [f"{c.label}: {'; '.join(c.incompatible)}" for c in breaking]
    with _ON_DEMAND_LOCK:
        for item in definitions:
            if isinstance(item, OnDemandFeatureView):
                _ON_DEMAND[item.name] = item
    invalidate_caches()
    return changes


def _link_sources(
    platform: Platform, definitions: Sequence[Definition], changes: Sequence[Change]
) -> None:
    """Lineage from each new view version's source datasets (exact versions) to the view."""
    versions = {(c.kind, c.name): c.new_version for c in changes if c.action != "unchanged"}
    for item in definitions:
        version = versions.get(("feature_view", item.name))
        if not isinstance(item, FeatureView) or version is None:
            continue
        sources = (
            [item.source] if isinstance(item.source, str) else list(item.source.inputs.values())
        )
        for source in sources:
            if source.startswith("dataset:"):
                dataset = get_dataset(platform, source.removeprefix("dataset:"))
                link(
                    f"dataset:{dataset.name}:{dataset.version}",
                    f"feature_view:{item.name}:{version}",
                    "source",
                )


_CACHE_EPOCH = [0]


def invalidate_caches() -> None:
    """Tell in-process readers that definitions changed."""
    _CACHE_EPOCH[0] += 1


def cache_epoch() -> int:
    return _CACHE_EPOCH[0]


def get_definition(
    platform: Platform, kind: str, name: str, version: int | None = None
) -> StoredDefinition:
    """The definition ``kind`` ``name``: its latest version, or ``version``.

    Raises:
        NotFoundError: no such definition or version.
    """
    with platform.read_session() as session:
        query = select(FeatureDefinitionRow).where(
            FeatureDefinitionRow.kind == kind, FeatureDefinitionRow.name == name
        )
        if version is None:
            query = query.order_by(FeatureDefinitionRow.version.desc()).limit(1)
        else:
            query = query.where(FeatureDefinitionRow.version == version)
        row = session.execute(query).scalar_one_or_none()
    if row is None:
        label = kind.replace("_", " ")
        raise NotFoundError(
            f"{label} {name!r} does not exist", hint="ghaf features list; ghaf features apply"
        )
    return _stored(row)


def definition_project(platform: Platform, kind: str, name: str) -> str:
    """The project the definition ``kind`` ``name`` belongs to.

    Raises:
        NotFoundError: no such definition.
    """
    return get_definition(platform, kind, name).project


def get_entity(platform: Platform, name: str) -> Entity:
    return entity_from_spec(get_definition(platform, "entity", name).spec)


def get_feature_view(
    platform: Platform, name: str, version: int | None = None
) -> tuple[FeatureView, int]:
    """The feature view ``name`` (latest or given version) and its version number."""
    stored = get_definition(platform, "feature_view", name, version)
    entities = {e: get_entity(platform, e) for e in stored.spec["entities"]}
    return view_from_spec(stored.spec, entities), stored.version


def get_feature_service(platform: Platform, name: str) -> FeatureService:
    return service_from_spec(get_definition(platform, "feature_service", name).spec)


def get_on_demand_view(name: str) -> OnDemandFeatureView:
    with _ON_DEMAND_LOCK:
        if name in _ON_DEMAND:
            return _ON_DEMAND[name]
    raise NotFoundError(
        f"on-demand feature view {name!r} is not loaded in this process",
        hint="apply its definitions file in this process (its function is Python code)",
    )


def list_definitions(
    platform: Platform, *, projects: Collection[str] | None = None
) -> list[StoredDefinition]:
    """The latest version of every definition (of ``projects`` only, when given), by kind
    and name."""
    with platform.read_session() as session:
        rows = _latest_rows(session, projects=projects)
    return [_stored(row) for _, row in sorted(rows.items())]


def definition_projects(platform: Platform) -> list[str]:
    """The projects that hold a feature definition."""
    with platform.read_session() as session:
        return list(session.execute(select(FeatureDefinitionRow.project).distinct()).scalars())


@dataclass(frozen=True)
class ViewSelection:
    """The features wanted from one view, in request order."""

    view: FeatureView
    version: int
    features: tuple[str, ...]


def resolve(
    platform: Platform, features: Sequence[str] | str
) -> tuple[list[ViewSelection], list[OnDemandFeatureView]]:
    """Turn ``"view:feature"`` refs (or a feature service name) into per-view selections.

    Raises:
        InvalidInputError: an unknown feature, naming it.
        NotFoundError: an unknown view or service.
    """
    refs = (
        list(get_feature_service(platform, features).features)
        if isinstance(features, str)
        else list(features)
    )
    if not refs:
        raise InvalidInputError("no features requested", hint="pass 'view:feature' references")
    order: list[str] = []
    wanted: dict[str, list[str]] = {}
    on_demand: list[OnDemandFeatureView] = []
    views: dict[str, tuple[FeatureView, int]] = {}
    for ref in refs:
        view_name, feature = parse_ref(ref)
        if view_name in _ON_DEMAND:
            odfv = get_on_demand_view(view_name)
            if odfv not in on_demand:
                on_demand.append(odfv)
            for source in odfv.sources:
                _add(platform, views, wanted, order, *parse_ref(source))
            continue
        _add(platform, views, wanted, order, view_name, feature)
    selections = [ViewSelection(views[n][0], views[n][1], tuple(wanted[n])) for n in order]
    return selections, on_demand


def _add(
    platform: Platform,
    views: dict[str, tuple[FeatureView, int]],
    wanted: dict[str, list[str]],
    order: list[str],
    view_name: str,
    feature: str | None,
) -> None:
    if view_name not in views:
        try:
            views[view_name] = get_feature_view(platform, view_name)
        except NotFoundError as exc:
            raise InvalidInputError(
                f"unknown feature view {view_name!r}", hint="ghaf features list"
            ) from exc
        order.append(view_name)
        wanted[view_name] = []
    view = views[view_name][0]
    names = view.feature_names if feature is None else (view.field(feature).name,)
    for name in names:
        if name not in wanted[view_name]:
            wanted[view_name].append(name)
