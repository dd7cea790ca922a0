"""Migrations build exactly the ORM's schema, on SQLite and PostgreSQL, matching the snapshot;
a new database built in one step from the ORM (what ``ghaf init`` does) equals the replay.

Regenerate after adding a migration, review the diff, then run again without the variable
(an update run always fails, so a snapshot is never compared with itself):
    GHAF_TEST_UPDATE_SNAPSHOTS=1 pytest tests/integration/test_schema.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, select

from ghaf.metadata.engine import GOVERNED, create_metadata_engine
from ghaf.metadata.migrate import pending_heads, upgrade
from ghaf.metadata.tables import load_all_tables

SNAPSHOTS = Path(__file__).parent.parent / "data" / "schema"


def _engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if backend == "sqlite":
        return create_metadata_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    return create_metadata_engine(request.getfixturevalue("postgres_url"))


def _dump(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    schema: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if table == "alembic_version":
            continue
        schema[table] = {
            "columns": {
                c["name"]: {"type": str(c["type"]), "nullable": c["nullable"]}
                for c in inspector.get_columns(table)
            },
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                f"{i['name']}({','.join(str(c) for c in i['column_names'])})"
                + (" unique" if i["unique"] else "")
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                f"{u['name']}({','.join(u['column_names'])})"
                for u in inspector.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(
                f"{','.join(f['constrained_columns'])}->{f['referred_table']}"
                for f in inspector.get_foreign_keys(table)
            ),
        }
    return schema


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_match_orm_and_snapshot(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine = _engine(backend, request, tmp_path)
    try:
        upgrade(engine, replay=True)
        upgrade(engine, replay=True)  # idempotent
        assert pending_heads(engine) == set()
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, load_all_tables().metadata)
            conn.rollback()
        assert diffs == [], f"ORM and migrations differ: {diffs}"
        snapshot = SNAPSHOTS / f"{backend}.json"
        dumped = _dump(engine)
        if os.environ.get("GHAF_TEST_UPDATE_SNAPSHOTS"):
            # An update run never passes: a snapshot compared with itself proves nothing.
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            snapshot.write_text(json.dumps(dumped, indent=2, sort_keys=True) + "\n")
            pytest.fail(
                f"rewrote {snapshot.name}: review `git diff {snapshot}` and run again "
                "without GHAF_TEST_UPDATE_SNAPSHOTS"
            )
        assert dumped == json.loads(snapshot.read_text()), (
            f"schema differs from {snapshot}; regenerate with GHAF_TEST_UPDATE_SNAPSHOTS=1"
        )
    finally:
        engine.dispose()


def _contents(engine: Engine) -> dict[str, Any]:
    """Every table's rows (the seeded ones) and the stamped heads, as sorted lists."""
    reflected = MetaData()
    reflected.reflect(engine)
    with engine.connect() as conn:
        rows = {
            name: sorted(tuple(map(str, row)) for row in conn.execute(select(table)))
            for name, table in reflected.tables.items()
        }
        conn.rollback()
    return rows


def _drop_everything(engine: Engine) -> None:
    reflected = MetaData()
    reflected.reflect(engine)
    with engine.connect().execution_options(**{GOVERNED: True}) as conn:
        reflected.drop_all(conn)
        conn.commit()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_new_database_is_built_as_the_migrations_build_it(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine = _engine(backend, request, tmp_path)
    try:
        upgrade(engine, replay=True)
        replayed = (_dump(engine), _contents(engine))
        assert replayed[1]["audit_head"] == [("1", "0", "0" * 64)]  # the seeded genesis
        _drop_everything(engine)
        assert inspect(engine).get_table_names() == []
        upgrade(engine)  # empty: built from the ORM and stamped
        assert (_dump(engine), _contents(engine)) == replayed
        assert pending_heads(engine) == set()
        upgrade(engine)  # no longer empty: Alembic finds nothing to apply
        assert (_dump(engine), _contents(engine)) == replayed
    finally:
        engine.dispose()
