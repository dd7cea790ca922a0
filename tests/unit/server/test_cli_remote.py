"""The CLI against ``ghaf server`` (``--url``/``GHAF_URL``) prints what it prints on the
home: the same commands, the same tables and JSON, the same errors and exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import register_model
from ghaf.testing.people import mint, person
from ghaf.tracking.query import search_runs
from ghaf.tracking.service import create_run, end_run, log_batch
from tests.unit.server.cli_runner import ghaf
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
LONG = "a-model-name-long-enough-that-an-80-column-table-would-cut-it-short-" + "x" * 40


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[tuple[Platform, str, str, str]]:
    from sklearn.linear_model import LogisticRegression

    admin = platform.admin()
    run_id = create_run(platform, admin, "churn", tags={"team": "risk"})
    log_batch(platform, admin, run_id, metrics=[("auc", 0.91, 0, 1.0)], params={"lr": "0.1"})
    end_run(platform, admin, run_id)
    other = create_run(platform, admin, "churn", name="second")
    log_batch(platform, admin, other, metrics=[("loss", 0.2, 0, 1.0)], params={"lr": "0.3"})
    x = np.random.default_rng(3).normal(size=(40, 3))
    saved = tmp_path / "model"
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), saved)
    register_model(platform, person(platform, "dana", ["data_scientist"]), LONG, saved)
    token = mint(platform, "alice", ["data_scientist"])
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield platform, server.url, token, run_id
    finally:
        server.stop()


def test_reads_print_the_same_in_both_modes(served: tuple[Platform, str, str, str]) -> None:
    platform, url, token, run_id = served
    home = str(platform.settings.home)
    other_id = next(r.run_id for r in search_runs(platform, "").runs if r.run_id != run_id)
    commands = [
        ("whoami",),
        ("projects", "list"),
        ("runs", "list"),
        ("runs", "list", "--filter", "metrics.auc > 0.5"),
        ("runs", "show", run_id),
        ("runs", "compare", run_id, other_id),
        ("models", "list"),
        ("models", "show", LONG),
        ("models", "show", f"{LONG}:1"),
    ]
    for command in commands:
        for output in ((), ("--output", "json")):
            local = ghaf("--home", home, "--token", token, *command, *output)
            remote = ghaf("--url", url, "--token", token, *command, *output)
            assert local.returncode == remote.returncode == 0, (
                command,
                local.stderr,
                remote.stderr,
            )
            assert remote.stdout == local.stdout, command
            if output:
                json.loads(remote.stdout)  # one JSON document
    listed = ghaf("--url", url, "--token", token, "models", "list")
    assert LONG in listed.stdout and "…" not in listed.stdout  # a pipe never cuts a value


def test_errors_and_exit_codes_are_the_same(served: tuple[Platform, str, str, str]) -> None:
    platform, url, token, _ = served
    home = str(platform.settings.home)
    missing = ("runs", "show", "0" * 32)
    local = ghaf("--home", home, "--token", token, *missing)
    remote = ghaf("--url", url, "--token", token, *missing)
    assert local.returncode == remote.returncode == 4
    assert remote.stderr.splitlines()[0] == local.stderr.splitlines()[0]
    forged = ghaf("--url", url, "--token", "ghaf_" + "0" * 16 + "_" + "y" * 43, "whoami")
    assert forged.returncode == 6 and "not valid" in forged.stderr
    home_only = ghaf("--url", url, "--token", token, "verify", "fraud:1")
    assert home_only.returncode == 2, home_only.stderr  # a configuration error
    assert "GHAF_URL" in home_only.stderr and "Traceback" not in home_only.stderr


def test_login_keeps_the_token_for_the_server(
    served: tuple[Platform, str, str, str], tmp_path: Path
) -> None:
    _, url, token, _ = served
    config = tmp_path / "config"
    # A headless machine: no OS keyring, so the token goes to a 0600 file.
    env = {
        "XDG_CONFIG_HOME": str(config),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    logged = ghaf("login", "--server", url, "--token", token, env=env)
    assert logged.returncode == 0, logged.stderr
    kept = config / "ghaf" / "servers.json"
    assert kept.stat().st_mode & 0o777 == 0o600
    who = ghaf("whoami", env={**env, "GHAF_URL": url})
    assert who.returncode == 0 and who.stdout.startswith("alice (user, proven by token")
    bad = ghaf("login", "--server", url, "--token", "ghaf_nope", env=env)
    assert bad.returncode == 6
    assert json.loads(kept.read_text()) == {url: token}  # a refused login keeps nothing
    empty = {**env, "XDG_CONFIG_HOME": str(tmp_path / "empty")}
    nobody = ghaf("whoami", env={**empty, "GHAF_URL": url})
    assert nobody.returncode == 2 and "ghaf login --server" in nobody.stderr


def test_login_keeps_the_token_in_the_os_keyring_where_there_is_one(
    served: tuple[Platform, str, str, str], tmp_path: Path
) -> None:
    """With a keyring backend (here keyrings.alt's file keyring, standing in for the
    Keychain or the Secret Service), the token goes there and no token file is written."""
    _, url, token, _ = served
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
    }
    logged = ghaf("login", "--server", url, "--token", token, env=env)
    assert logged.returncode == 0 and "OS keyring" in logged.stdout, logged.stderr
    assert not (tmp_path / "config" / "ghaf" / "servers.json").exists()
    held = list((tmp_path / "data").rglob("keyring_pass.cfg"))
    assert len(held) == 1 and "[ghaf]" in held[0].read_text()  # one entry, under "ghaf"
    who = ghaf("whoami", env={**env, "GHAF_URL": url})
    assert who.returncode == 0 and who.stdout.startswith("alice (user, proven by token"), who.stderr


def test_a_person_logs_in_to_the_server_with_the_device_flow(
    platform: Platform, tmp_path: Path
) -> None:
    """``ghaf login --server URL --device``: the client learns the server's OIDC provider
    from the server, shows the person the URL and code, keeps the token the provider gives,
    and the server proves it (groups mapped to roles)."""
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    from ghaf.projects import create_project
    from tests.unit.identity.fake_idp import running_idp

    create_project(platform, platform.admin(), "fraud")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with running_idp() as idp:
        idp.publish(key, "k1", RSAAlgorithm)
        now = int(time.time())
        claims = {"iss": idp.issuer, "aud": "ghaf", "sub": "dana", "iat": now, "exp": now + 600}
        issued = jwt.encode(
            {**claims, "groups": ["ml"]}, key, algorithm="RS256", headers={"kid": "k1"}
        )
        idp.polls[:] = ["authorization_pending", f"token:{issued}"]
        identity = {
            "GHAF_IDENTITY__ISSUER": idp.issuer,
            "GHAF_IDENTITY__CLIENT_ID": "cli",
            "GHAF_IDENTITY__ROLE_MAPPING": json.dumps({"ml": ["fraud:data_scientist"]}),
        }
        server = ServerProcess(
            platform.settings.home, ("server",), "/health", tmp_path / "server.log", env=identity
        ).start()
        try:
            env = {
                "XDG_CONFIG_HOME": str(tmp_path / "config"),
                "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            }
            logged = ghaf("login", "--server", server.url, "--device", env=env)
            assert logged.returncode == 0, logged.stderr
            assert f"open {idp.issuer}/device and enter the code ABCD-EFGH" in logged.stdout
            assert "as dana" in logged.stdout
            who = ghaf("whoami", env={**env, "GHAF_URL": server.url})
            assert who.returncode == 0 and who.stdout.startswith("dana (user, proven by"), who
            assert "fraud:data_scientist" in who.stdout
        finally:
            server.stop()
    plain = ServerProcess(platform.settings.home, ("server",), "/health", tmp_path / "p.log")
    plain.start()
    try:
        refused = ghaf("login", "--server", plain.url, "--device", env=env)
        assert refused.returncode == 2 and "offers no OIDC login" in refused.stderr
    finally:
        plain.stop()
