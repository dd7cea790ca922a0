"""Stored profiles belong to a project: saved in one, listed and read by it, a name kept
by its first project (also under concurrent saves), and existing rows given the project
their audited save was made in when the schema gains the column."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from alembic import command
from sqlalchemy import insert, select

from ghaf.errors import AlreadyExistsError, NotFoundError
from ghaf.metadata.engine import GOVERNED
from ghaf.metadata.migrate import alembic_config
from ghaf.monitoring import build_profile
from ghaf.monitoring.profile import Profile
from ghaf.monitoring.store import (
    StoredProfile,
    get_profile,
    list_profiles,
    load_profile,
    profile_projects,
    save_profile,
)
from ghaf.monitoring.tables import ReferenceProfileRow
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow

PROFILE = build_profile(pa.table({"x": np.arange(50.0)}))


@pytest.fixture
def homes(platform: Platform) -> Platform:
    """A home with the projects fraud and retail."""
    for name in ("fraud", "retail"):
        create_project(platform, platform.admin(), name)
    return platform


def _save(platform: Platform, name: str, project: str | None) -> StoredProfile:
    target = platform if project is None else platform.in_project(project)
    return save_profile(target, platform.admin(), name, PROFILE, source="t", project=project)


def _outcomes(platform: Platform, name: str) -> list[tuple[str, str]]:
    with platform.read_session() as session:
        rows = session.execute(
            select(AuditRecordRow.project, AuditRecordRow.outcome)
            .where(
                AuditRecordRow.action == "monitoring.profile.save",
                AuditRecordRow.resource == f"profile:{name}",
            )
            .order_by(AuditRecordRow.seq)
        ).all()
        return [(project, outcome) for project, outcome in rows]


def test_a_profile_is_saved_listed_and_read_in_its_project(homes: Platform) -> None:
    first = _save(homes, "tx-ref", "fraud")
    second = _save(homes, "tx-ref", "fraud")
    mine = _save(homes, "visits", "retail")
    assert [(p.project, p.version) for p in (first, second, mine)] == [
        ("fraud", 1),
        ("fraud", 2),
        ("retail", 1),
    ]
    assert _save(homes, "home-ref", None).project == homes.default_project
    assert [(p.name, p.version) for p in list_profiles(homes, projects=["fraud"])] == [
        ("tx-ref", 1),
        ("tx-ref", 2),
    ]
    assert [p.name for p in list_profiles(homes, projects=["retail"])] == ["visits"]
    assert list_profiles(homes, projects=[]) == []
    assert len(list_profiles(homes)) == 4
    assert sorted(profile_projects(homes)) == sorted(["fraud", "retail", homes.default_project])
    assert get_profile(homes, "tx-ref", project="fraud") == second
    assert get_profile(homes, "tx-ref@1") == first
    for ref in ("tx-ref", "tx-ref@1"):
        with pytest.raises(NotFoundError, match="no stored profile"):
            get_profile(homes, ref, project="retail")
    assert load_profile(homes, "tx-ref@1").num_rows == 50
    assert _outcomes(homes, "tx-ref") == [("fraud", "allowed"), ("fraud", "allowed")]


def test_a_name_stays_with_its_first_project(homes: Platform) -> None:
    _save(homes, "tx-ref", "fraud")
    with pytest.raises(AlreadyExistsError, match="profile name 'tx-ref' is taken in this home"):
        _save(homes, "tx-ref", "retail")
    # Nothing of retail's was stored, and the refusal is audited in retail.
    assert [(p.project, p.version) for p in list_profiles(homes, "tx-ref")] == [("fraud", 1)]
    assert _outcomes(homes, "tx-ref") == [("fraud", "allowed"), ("retail", "failed")]
    assert _save(homes, "tx-ref", "fraud").version == 2  # its own project goes on


def test_concurrent_first_saves_in_two_projects_leave_one_owner(homes: Platform) -> None:
    start = threading.Barrier(6)
    outcomes: list[str] = []
    lock = threading.Lock()

    def saver(project: str) -> Callable[[], None]:
        def run() -> None:
            start.wait(timeout=60)
            try:
                stored = _save(homes, "race", project)
                outcome = f"saved {stored.project}"
            except AlreadyExistsError:
                outcome = "refused"
            with lock:
                outcomes.append(outcome)

        return run

    threads = [threading.Thread(target=saver(p)) for p in ("fraud", "retail") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == 6  # every save answered: stored or refused, nothing else
    stored = list_profiles(homes, "race")
    owners = {p.project for p in stored}
    assert len(owners) == 1
    assert [p.version for p in stored] == list(range(1, len(stored) + 1))
    assert sorted(o for o in outcomes if o != "refused") == [f"saved {owners.pop()}"] * len(stored)


def _migrate(platform: Platform, verb: str, target: str, default: str | None = None) -> None:
    config = alembic_config()
    if default is not None:
        config.attributes["default_project"] = default
    with platform.engine.connect().execution_options(**{GOVERNED: True}) as connection:
        config.attributes["connection"] = connection
        getattr(command, verb)(config, target)
        connection.commit()


def _unaudited_row(platform: Platform, name: str) -> None:
    """A row as the schema before projects held it, with no save recorded for it."""
    digest = platform.artifacts.put_bytes(Profile.to_bytes(PROFILE)).digest
    values = {
        "name": name,
        "version": 1,
        "digest": digest,
        "source": "old",
        "num_rows": 50,
        "num_columns": 1,
        "created_by": "someone",
        "created_at": datetime.now(UTC),
    }
    with platform.engine.connect().execution_options(**{GOVERNED: True}) as connection:
        connection.execute(insert(ReferenceProfileRow).values(values))
        connection.commit()


@pytest.mark.parametrize("default", [None, "ops"])
def test_the_migration_gives_existing_rows_the_project_of_their_save(
    homes: Platform, default: str | None
) -> None:
    _save(homes, "tx-ref", "fraud")
    _save(homes, "tx-ref", "fraud")
    _save(homes, "visits", "retail")
    _migrate(homes, "downgrade", "monitoring_0001")
    _unaudited_row(homes, "legacy")
    _migrate(homes, "upgrade", "heads", default)
    found = {(p.name, p.version): p.project for p in list_profiles(homes)}
    assert found == {
        ("legacy", 1): default or "default",
        ("tx-ref", 1): "fraud",
        ("tx-ref", 2): "fraud",
        ("visits", 1): "retail",
    }
    with pytest.raises(AlreadyExistsError):
        _save(homes, "visits", "fraud")
