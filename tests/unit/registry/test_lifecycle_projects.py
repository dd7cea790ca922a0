"""A model's lifecycle is authorized in the model's project, whichever project the
caller's platform acts in: a role held in one project never approves, aliases, promotes
or edits the card of another project's model (on the home it was checked in the default
project, so a person bound there moved any project's model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from ghaf.access.tokens import verify_token
from ghaf.errors import PermissionDeniedError
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import (
    approve_model_version,
    delete_alias,
    get_model_version,
    register_model,
    set_alias,
    transition_model_version,
    update_model_card,
)
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.testing.people import mint

EVERY = ["model_approver", "release_manager", "data_scientist"]


def test_a_role_in_one_project_moves_nothing_of_another_s_model(
    platform: Platform, model_dir: Path
) -> None:
    admin = platform.admin()
    for project in ("fraud", "retail"):
        create_project(platform, admin, project)
    fraud = platform.in_project("fraud")
    register_model(fraud, admin, "churn", model_dir, project="fraud")
    set_alias(fraud, admin, "churn", "candidate", 1)
    token = mint(platform, "rita", EVERY, project="retail", bind_on="retail")
    rita = verify_token(platform, token, source="test")
    retail = platform.in_project("retail")
    before = get_model_version(platform, "churn:1")
    for act in (
        lambda: approve_model_version(retail, rita, "churn:1"),
        lambda: set_alias(retail, rita, "churn", "shadow", 1),
        lambda: delete_alias(retail, rita, "churn", "candidate"),
        lambda: transition_model_version(retail, rita, "churn:1", "staging"),
        lambda: update_model_card(retail, rita, "churn:1", "# rita was here"),
    ):
        with pytest.raises(PermissionDeniedError, match="in project 'fraud'"):
            act()
    after = get_model_version(platform, "churn:1")
    assert (after.aliases, after.stage, after.card, after.approvals) == (
        before.aliases,
        before.stage,
        before.card,
        before.approvals,
    )
    assert after.aliases == ("candidate",) and after.approvals == ()
    with platform.read_session() as session:
        denied = session.execute(
            select(AuditRecordRow.action, AuditRecordRow.project).where(
                AuditRecordRow.actor == "rita", AuditRecordRow.outcome == "denied"
            )
        ).all()
    assert sorted(denied) == sorted(
        (action, "fraud")
        for action in (
            "model.approve",
            "model.alias",
            "model.alias_delete",
            "model.promote",
            "model.card_update",
        )
    )
    # The home's owner, acting in the default project, still moves fraud's model.
    set_alias(platform, admin, "churn", "shadow", 1)
    assert "shadow" in get_model_version(platform, "churn:1").aliases
