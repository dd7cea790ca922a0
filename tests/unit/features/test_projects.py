"""Feature definitions belong to a project: applied in one, listed by it, a name kept by
its first project, what a project applies naming only its own entities and views,
materializations per project, and existing rows given their project by the migration."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, select

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ghaf.features import Entity, FeatureService, FeatureView, Field
from ghaf.features.classification import view_project
from ghaf.features.definitions import Definition
from ghaf.features.materialize import materialize
from ghaf.features.registry import (
    apply_definitions,
    definition_project,
    definition_projects,
    get_feature_view,
    list_definitions,
    plan_apply,
)
from ghaf.features.tables import FeatureDefinitionRow
from ghaf.metadata.engine import GOVERNED
from ghaf.metadata.migrate import alembic_config
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.online_store import T0, make_source, sample_definitions

UNTIL = T0 + timedelta(days=30)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_source(tmp_path / "source.parquet")


@pytest.fixture
def home(platform: Platform) -> Platform:
    """A home with the projects fraud and retail."""
    for name in ("fraud", "retail"):
        create_project(platform, platform.admin(), name)
    return platform


def _retail(source: Path) -> list[Definition]:
    """retail's own entity, view and service over the same file, under names of its own."""
    shopper = Entity("shopper", ("customer_id",))
    view = FeatureView(
        "basket_stats", (shopper,), str(source), (Field("spend"),), ttl=timedelta(days=99)
    )
    return [shopper, view, FeatureService("retail_v1", ("basket_stats:spend",))]


def _apply(platform: Platform, project: str, items: list[Definition]) -> None:
    apply_definitions(platform.in_project(project), platform.admin(), items)


def _rows(platform: Platform) -> list[tuple[str, str, int, str]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(FeatureDefinitionRow).order_by(
                FeatureDefinitionRow.kind, FeatureDefinitionRow.name, FeatureDefinitionRow.version
            )
        ).scalars()
        return [(r.kind, r.name, r.version, r.project) for r in rows]


def test_definitions_are_applied_and_listed_in_their_project(home: Platform, source: Path) -> None:
    _apply(home, "fraud", sample_definitions(source))
    _apply(home, "retail", _retail(source))
    _apply(home, "fraud", sample_definitions(source, ttl_days=5))  # a new version stays fraud's
    assert [(d.name, d.version) for d in list_definitions(home, projects=["fraud"])] == [
        ("customer", 1),
        ("fraud_v1", 1),
        ("customer_stats", 2),
    ]
    assert [d.name for d in list_definitions(home, projects=["retail"])] == [
        "shopper",
        "retail_v1",
        "basket_stats",
    ]
    assert list_definitions(home, projects=[]) == []
    assert {d.project for d in list_definitions(home)} == {"fraud", "retail"}
    assert sorted(definition_projects(home)) == ["fraud", "retail"]
    view, _ = get_feature_view(home, "basket_stats")
    assert view_project(home, view) == "retail"
    assert definition_project(home, "feature_view", "customer_stats") == "fraud"
    with pytest.raises(NotFoundError):
        definition_project(home, "entity", "nobody")
    with home.read_session() as session:
        applied = session.execute(
            select(AuditRecordRow.project)
            .where(AuditRecordRow.action == "features.apply")
            .order_by(AuditRecordRow.seq)
        ).scalars()
        assert list(applied) == ["fraud", "retail", "fraud"]


def test_a_name_of_one_project_cannot_be_reused_by_another(home: Platform, source: Path) -> None:
    _apply(home, "fraud", sample_definitions(source))
    before = _rows(home)
    retail = home.in_project("retail")
    for items in (sample_definitions(source), [Entity("customer", ("customer_id",))]):
        with pytest.raises(
            AlreadyExistsError, match="entity name 'customer' is taken in this home"
        ):
            plan_apply(retail, items)
        with pytest.raises(
            AlreadyExistsError, match="entity name 'customer' is taken in this home"
        ):
            apply_definitions(retail, home.admin(), items)
    service = FeatureService("fraud_v1", ("customer_stats:spend",))
    with pytest.raises(AlreadyExistsError, match="feature service name 'fraud_v1' is taken"):
        apply_definitions(retail, home.admin(), [service])
    assert _rows(home) == before  # nothing of retail's was written


def test_what_a_project_applies_names_only_its_own_definitions(
    home: Platform, source: Path
) -> None:
    _apply(home, "fraud", sample_definitions(source))
    before = _rows(home)
    retail = home.in_project("retail")
    customer = Entity("customer", ("customer_id",))
    borrowed = FeatureView("basket_stats", (customer,), str(source), (Field("spend"),))
    with pytest.raises(InvalidInputError, match="entity 'customer', not defined in project"):
        apply_definitions(retail, home.admin(), [borrowed])
    peeking = FeatureService("retail_v1", ("customer_stats:spend",))
    with pytest.raises(InvalidInputError) as peeked:
        apply_definitions(retail, home.admin(), [peeking])
    # the same words as for a view nobody has: fraud's names are not retail's to learn
    nowhere = FeatureService("retail_v1", ("no_such_view:spend",))
    with pytest.raises(InvalidInputError) as missing:
        apply_definitions(retail, home.admin(), [nowhere])
    assert peeked.value.headline == missing.value.headline.replace("no_such_view", "customer_stats")
    assert "not a feature view of project 'retail'" in peeked.value.headline
    assert _rows(home) == before
    _apply(home, "retail", _retail(source))  # its own names, its own entity: applied


def test_materialize_writes_the_project_s_views_only(home: Platform, source: Path) -> None:
    _apply(home, "fraud", sample_definitions(source, ttl_days=10_000))
    _apply(home, "retail", _retail(source))
    retail = home.in_project("retail")
    [result] = materialize(retail, home.admin(), until=UNTIL, full=True)
    assert result.view == "basket_stats"
    with pytest.raises(InvalidInputError, match="'customer_stats' is not a view of project"):
        materialize(retail, home.admin(), ["customer_stats"], until=UNTIL, full=True)
    fraud = materialize(home.in_project("fraud"), home.admin(), until=UNTIL, full=True)
    assert [r.view for r in fraud] == ["customer_stats"]


def _migrate(platform: Platform, verb: str, target: str) -> None:
    config = alembic_config()
    with platform.engine.connect().execution_options(**{GOVERNED: True}) as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, target)
        connection.commit()


def test_the_migration_gives_each_name_the_project_of_its_first_apply(
    home: Platform, source: Path
) -> None:
    _apply(home, "fraud", sample_definitions(source))
    _apply(home, "retail", _retail(source))
    _apply(home, "fraud", sample_definitions(source, ttl_days=5))
    before = _rows(home)
    _migrate(home, "downgrade", "features_0002")
    legacy = {  # a row no apply recorded
        "kind": "entity",
        "name": "legacy",
        "version": 1,
        "spec": "{}",
        "digest": "0" * 64,
        "created_by": "someone",
        "created_at": T0,
    }
    with home.engine.connect().execution_options(**{GOVERNED: True}) as connection:
        connection.execute(insert(FeatureDefinitionRow).values(legacy))
        connection.commit()
    _migrate(home, "upgrade", "heads")
    assert _rows(home) == sorted([*before, ("entity", "legacy", 1, "default")])
    assert {p for *_, p in before} == {"fraud", "retail"}
