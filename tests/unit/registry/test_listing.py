"""``ghaf models list``'s read (ghaf.registry.listing): one SQL query, run on a home's
SQLite file through ``sqlite3`` or on any store through Ghaf's engine, answers exactly
what the ORM query it replaced answered, over columns the ORM tables really have."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import Session

from ghaf.home import init_home
from ghaf.metadata.base import Base, utcnow
from ghaf.metadata.engine import GOVERNED, create_metadata_engine
from ghaf.platform import Platform
from ghaf.registry.listing import (
    LISTING_COLUMNS,
    _read_sqlite_file,
    list_models,
    list_models_at,
    read_models,
)
from ghaf.registry.tables import ModelVersionRow, RegisteredModelRow
from ghaf.settings import load_settings

MODELS = {  # name -> (project, versions); "empty" has none and is not listed
    "zeta": ("risk", 3),
    "Alpha": ("default", 1),
    "beta": ("risk", 2),
    "empty": ("default", 0),
}


def _orm_listing(platform: Platform) -> list[tuple[str, int, str]]:
    """The ORM query ``list_models`` ran before it read through one SQL text."""
    with platform.read_session() as session:
        rows = session.execute(
            select(
                RegisteredModelRow.name,
                func.max(ModelVersionRow.version),
                RegisteredModelRow.project,
            )
            .join(ModelVersionRow, ModelVersionRow.model_id == RegisteredModelRow.id)
            .group_by(RegisteredModelRow.id, RegisteredModelRow.name, RegisteredModelRow.project)
            .order_by(RegisteredModelRow.name)
        ).all()
    return [(str(n), int(v), str(p)) for n, v, p in rows]


def _fill(platform: Platform) -> None:
    now = utcnow()
    with Session(platform.engine.execution_options(**{GOVERNED: True})) as session:
        for name, (project, versions) in MODELS.items():
            model = RegisteredModelRow(name=name, project=project, created_by="o", created_at=now)
            session.add(model)
            session.flush()
            for number in range(1, versions + 1):
                session.add(
                    ModelVersionRow(
                        model_id=model.id,
                        version=number,
                        flavor="skops",
                        stage="candidate",
                        source="test",
                        signature="{}",
                        metrics="{}",
                        files="{}",
                        signed=False,
                        lineage="[]",
                        card="",
                        created_by="o",
                        created_at=now,
                        updated_at=now,
                    )
                )
        session.commit()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def filled(request: pytest.FixtureRequest, isolated_env: Path) -> Iterator[Platform]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with init_home(load_settings(home=isolated_env, metadata_url=url)) as platform:
        _fill(platform)
        yield platform


def test_the_listing_reads_columns_the_orm_tables_have() -> None:
    import ghaf.registry.tables  # noqa: F401  (maps the registry's tables on Base)

    for table, columns in LISTING_COLUMNS.items():
        assert set(columns) <= set(Base.metadata.tables[table].c.keys()), table
    models, versions = (Base.metadata.tables[t] for t in LISTING_COLUMNS)
    assert isinstance(models.c.name.type, String) and isinstance(models.c.project.type, String)
    assert isinstance(versions.c.version.type, Integer)
    assert [fk.target_fullname for fk in versions.c.model_id.foreign_keys] == [
        "registered_models.id"
    ]


def test_every_way_of_listing_answers_what_the_orm_query_did(filled: Platform) -> None:
    expected = [("Alpha", 1, "default"), ("beta", 2, "risk"), ("zeta", 3, "risk")]
    assert _orm_listing(filled) == expected  # the oracle, on this store's collation
    url = filled.settings.resolved_metadata_url
    assert list_models(filled) == expected  # a service, on the platform's engine
    assert list_models_at(url) == expected  # the CLI on a home
    engine = create_metadata_engine(url)
    try:
        assert read_models(engine) == expected  # the engine's way, on any store
    finally:
        engine.dispose()
    if url.startswith("sqlite"):
        assert _read_sqlite_file(url) == expected  # the CLI's fast way answered itself


def test_a_home_file_others_may_read_goes_the_engines_way_which_makes_it_private(
    platform: Platform,
) -> None:
    _fill(platform)
    url = platform.settings.resolved_metadata_url
    database = platform.settings.home / "ghaf.db"
    database.chmod(0o644)
    assert _read_sqlite_file(url) is None
    assert [name for name, _, _ in list_models_at(url)] == ["Alpha", "beta", "zeta"]
    assert database.stat().st_mode & 0o777 == 0o600
