"""The home's owner: fixed at init from the kernel's account, changed only by a transfer."""

from __future__ import annotations

import json
import os
import pwd

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from ghaf.cli.main import app
from ghaf.errors import InvalidInputError, PermissionDeniedError
from ghaf.home import transfer_home
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import os_user
from ghaf.testing.people import person

OWNER = pwd.getpwuid(os.geteuid()).pw_name


def _last(platform: Platform, action: str) -> AuditRecordRow:
    with platform.read_session() as session:
        return session.execute(
            select(AuditRecordRow)
            .where(AuditRecordRow.action == action)
            .order_by(AuditRecordRow.seq.desc())
            .limit(1)
        ).scalar_one()


def test_the_owner_is_the_kernels_account_not_the_environment(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    assert os_user() == (OWNER, os.geteuid())
    assert platform.home_owner() == OWNER
    actor = platform.admin()
    assert actor.name == OWNER and actor.credential is not None
    assert actor.credential.kind == "home-owner"
    out = CliRunner().invoke(app, ["admin", "show", "--output", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["owner"] == OWNER


def test_transfer_is_the_owners_alone_and_audited(platform: Platform) -> None:
    # A token with every role, even one minted for the owner's own name, is not the owner.
    everyone = person(platform, OWNER, ["project_admin", "release_manager", "auditor"])
    with pytest.raises(PermissionDeniedError, match="only the home's owner"):
        transfer_home(platform, everyone, "nobody")
    with pytest.raises(InvalidInputError, match="not an account on this machine"):
        transfer_home(platform, platform.admin(), "no-such-login-xyz")
    assert platform.home_owner() == OWNER
    assert transfer_home(platform, platform.admin(), "nobody") == OWNER
    record = _last(platform, "home.transfer")
    assert (record.actor, record.outcome) == (OWNER, "allowed")
    assert json.loads(record.details) == {"from": OWNER, "to": "nobody"}
    # Now this OS account is nobody in particular: it must present a credential.
    assert platform.home_owner() == "nobody"
    with pytest.raises(PermissionDeniedError, match=f"{OWNER} is not the owner of this home"):
        platform.admin()
    refused = _last(platform, "identity.assert")
    assert (refused.actor, refused.outcome) == (OWNER, "denied")
    out = CliRunner().invoke(app, ["projects", "create", "later"])
    assert out.exit_code != 0 and isinstance(out.exception, PermissionDeniedError)
