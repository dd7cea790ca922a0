"""The compliance report's access review on PostgreSQL: each token's last use is found by
the database (its JSON operators over the audit details), as on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from ghaf.access.tokens import verify_token
from ghaf.compliance.evidence import Window, access_evidence
from ghaf.home import init_home
from ghaf.projects import create_project
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.settings import load_settings
from ghaf.testing.people import mint


def test_each_token_s_last_use_and_who_never_acted(tmp_path: Path, postgres_url: str) -> None:
    settings = load_settings(home=tmp_path / "home", metadata_url=postgres_url)
    with init_home(settings) as platform:
        used = mint(platform, "pam", ["project_admin"], project="*")
        unused = mint(platform, "nia", ["viewer"])
        pam = verify_token(platform, used, source="10.0.0.7:5000")
        create_project(platform, pam, "first")
        create_project(platform, pam, "second")
        now = datetime.now(UTC)
        with platform.read_session() as session:
            found = access_evidence(
                platform, session, Window(now - timedelta(hours=1), now + timedelta(minutes=1))
            )["evidence"]
            newest = session.execute(
                select(func.max(AuditRecordRow.ts)).where(AuditRecordRow.actor == "pam")
            ).scalar_one()
    tokens = {t["principal"]: t for t in found["tokens"]}
    assert tokens["pam"]["token_id"] == used.split("_")[1]
    assert tokens["pam"]["last_used_at"] == newest
    assert tokens["pam"]["last_used_from"] == "10.0.0.7:5000"
    assert tokens["nia"]["token_id"] == unused.split("_")[1]
    assert tokens["nia"]["last_used_at"] is None
    assert "nia" in found["never_seen"] and "pam" not in found["never_seen"]
