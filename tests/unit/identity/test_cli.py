"""The identity CLI as a user types it: tokens, roles, whoami, policy check, certs dev."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.slow


def ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAF_")}
    env["GHAF_HOME"] = str(home)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "ghaf", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _count(home: Path, table: str) -> int:
    engine = create_engine(f"sqlite:///{home / 'ghaf.db'}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_roles_tokens_and_whoami(isolated_env: Path) -> None:
    home = isolated_env
    assert ghaf(home, "init").returncode == 0
    bound = ghaf(home, "roles", "bind", "alice", "data_scientist", "--project", "fraud")
    assert bound.returncode == 0, bound.stderr
    assert "alice" in ghaf(home, "roles", "list", "--project", "fraud").stdout

    created = ghaf(home, "tokens", "create", "alice", "--project", "fraud", "--expires-in", "1d")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("ghaf_")
    listed = ghaf(home, "tokens", "list")
    assert secret not in listed.stdout and "active" in listed.stdout

    who = ghaf(home, "--token", secret, "whoami")
    assert who.returncode == 0, who.stderr
    assert "alice" in who.stdout and "fraud:data_scientist" in who.stdout
    assert f"token {secret.split('_')[1]} minted by" in who.stdout

    token_id = secret.split("_")[1]
    assert ghaf(home, "tokens", "revoke", token_id).returncode == 0
    refused = ghaf(home, "--token", secret, "whoami")
    assert refused.returncode == 6 and "revoked" in refused.stderr
    assert "proven by home-owner uid:" in ghaf(home, "whoami").stdout


def test_bad_input_is_one_line_and_changes_nothing(isolated_env: Path) -> None:
    home = isolated_env
    assert ghaf(home, "init").returncode == 0
    before = (_count(home, "identity_role_bindings"), _count(home, "identity_tokens"))
    bad_role = ghaf(home, "roles", "bind", "alice", "superuser", "--project", "fraud")
    assert bad_role.returncode == 3 and "superuser" in bad_role.stderr
    assert "Traceback" not in bad_role.stderr
    no_role = ghaf(home, "tokens", "create", "bob", "--project", "fraud")
    assert no_role.returncode == 3 and "holds no role" in no_role.stderr
    bad_ttl = ghaf(home, "tokens", "create", "bob", "--project", "fraud", "--expires-in", "soon")
    assert bad_ttl.returncode == 3 and "duration" in bad_ttl.stderr
    unknown = ghaf(home, "tokens", "revoke", "0123456789abcdef")
    assert unknown.returncode == 4
    assert ghaf(home, "roles", "unbind", "x", "viewer", "--project", "p").returncode == 4
    after = (_count(home, "identity_role_bindings"), _count(home, "identity_tokens"))
    assert before == after


def test_policy_check_explains(isolated_env: Path) -> None:
    home = isolated_env
    assert ghaf(home, "init").returncode == 0
    refused = ghaf(home, "policy", "check", "--tag", "pii", "--region", "eu-west-1")
    assert refused.returncode == 7
    assert "REFUSED" in refused.stdout and "ae-*" in refused.stdout
    allowed = ghaf(home, "policy", "check", "--tag", "pii", "--region", "ae-auh-1")
    assert allowed.returncode == 0 and "ALLOWED" in allowed.stdout
    rbac = ghaf(home, "policy", "check", "--principal", "eve", "--action", "model.promote")
    assert rbac.returncode == 6 and "deny by default" in rbac.stdout
    assert "release_manager" in rbac.stderr
    assert ghaf(home, "policy", "check").returncode == 3


def test_certs_dev_writes_a_ca_and_private_keys_0600(isolated_env: Path) -> None:
    home = isolated_env
    out = home / "pki"
    made = ghaf(home, "certs", "dev", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert "GHAF_TLS__CERT_FILE=" in made.stdout
    for name in ("ca-key.pem", "server-key.pem", "client-key.pem"):
        assert (out / name).stat().st_mode & 0o777 == 0o600
    assert ghaf(home, "certs", "dev", "--out", str(out), "--days", "0").returncode == 2
