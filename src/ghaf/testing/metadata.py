"""Contract suite for metadata databases. Provide a ``platform`` fixture (initialized home)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, inspect

from ghaf.errors import AlreadyExistsError, SpineBypassError
from ghaf.metadata.base import utcnow
from ghaf.metadata.migrate import pending_heads
from ghaf.platform import Platform
from ghaf.projects import create_project, get_project, list_projects
from ghaf.projects.tables import ProjectRow
from ghaf.security.audit import AuditLog


class MetadataContract:
    """Behaviour every metadata database must show."""

    def test_migrated_to_every_head(self, platform: Platform) -> None:
        assert pending_heads(platform.engine) == set()
        tables = set(inspect(platform.engine).get_table_names())
        assert {"projects", "audit_records", "audit_head", "home_info"} <= tables

    def test_create_read_and_audit(self, platform: Platform) -> None:
        created = create_project(platform, platform.admin(), "risk", description="r")
        assert get_project(platform, "risk") == created
        assert created.created_at.tzinfo is not None
        with platform.read_session() as session:
            records = list(AuditLog().records(session, resource="project:risk"))
            assert [(r.action, r.outcome) for r in records] == [("project.create", "allowed")]
            assert AuditLog().first_broken(session) is None

    def test_duplicate_is_refused_and_nothing_lost(self, platform: Platform) -> None:
        create_project(platform, platform.admin(), "dup", description="first")
        with pytest.raises(AlreadyExistsError, match="dup"):
            create_project(platform, platform.admin(), "dup", description="second")
        assert [p.description for p in list_projects(platform) if p.name == "dup"] == ["first"]
        with platform.read_session() as session:
            outcomes = [r.outcome for r in AuditLog().records(session, resource="project:dup")]
        assert outcomes == ["allowed", "failed"]

    def test_write_outside_the_spine_is_refused(self, platform: Platform) -> None:
        with platform.read_session() as session, pytest.raises(SpineBypassError):
            session.execute(
                insert(ProjectRow).values(
                    name="sneaky", description="", region="x", created_by="x", created_at=utcnow()
                )
            )
        assert all(p.name != "sneaky" for p in list_projects(platform))
