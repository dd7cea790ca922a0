"""OIDC against a real provider (npm oidc-provider) through a real HTTP server on 127.0.0.1.

The provider signs with a key this test makes, so the test can also mint JWTs that are
valid in every respect but one (``oidc_support.REFUSALS``): each must be refused with
401 and an audit record, and a token the provider itself issues must be accepted with
its groups mapped to roles. ``test_oidc_servers.py`` does the same at the real servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ghaf.access.bindings import bind_role
from ghaf.access.http_auth import AUTH_ACTION, BearerAuthMiddleware, request_actor
from ghaf.access.tokens import create_token, revoke_token
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.oidc import client_credentials_token
from ghaf.security.tls import uvicorn_server
from ghaf.settings import load_settings
from tests.integration.oidc_support import (
    AUDIENCE,
    REASONS,
    REFUSALS,
    SECRET,
    Provider,
    claims,
    free_port,
    run_provider,
    sign,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    groups = {"ci-bot": ["ml-approvers"], "nobody": []}
    with run_provider(tmp_path_factory.mktemp("oidc"), groups) as running:
        yield running


@pytest.fixture(scope="module")
def server(
    provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Platform]]:
    settings = load_settings(
        home=tmp_path_factory.mktemp("home"),
        identity={
            "issuer": provider.issuer,
            "audience": AUDIENCE,
            "role_mapping": {"ml-approvers": ["fraud:model_approver"]},
            "client_id": "ci-bot",
            "client_secret": SECRET,
        },
        tls={"allow_plain_http": True},
    )
    platform = init_home(settings)

    async def whoami(request: Request) -> JSONResponse:
        actor = request_actor(request)
        return JSONResponse({"name": actor.name, "kind": actor.kind, "roles": sorted(actor.roles)})

    app = Starlette(routes=[Route("/whoami", whoami)])
    port = free_port()
    uv = uvicorn_server(
        BearerAuthMiddleware(app, platform),
        settings.tls,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", platform
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        platform.close()


def denied_records(platform: Platform) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        return list(
            session.execute(
                select(AuditRecordRow).where(
                    AuditRecordRow.action == AUTH_ACTION, AuditRecordRow.outcome == "denied"
                )
            ).scalars()
        )


def test_a_well_formed_self_minted_token_is_accepted(
    provider: Provider, server: tuple[str, Platform]
) -> None:
    """The control case: each refusal below differs from this in one respect only."""
    url, _ = server
    answer = httpx.get(
        f"{url}/whoami", headers={"Authorization": f"Bearer {sign(provider, claims(provider))}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == "mallory"


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_bad_jwt_is_refused_401_and_audited(
    provider: Provider, server: tuple[str, Platform], case: str
) -> None:
    url, platform = server
    before = len(denied_records(platform))
    token = REFUSALS[case](provider)
    answer = httpx.get(f"{url}/whoami", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401, (case, answer.text)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    records = denied_records(platform)
    assert len(records) == before + 1
    assert records[-1].actor == "anonymous"
    assert records[-1].source is not None and records[-1].source.startswith("127.0.0.1")
    reason = json.loads(records[-1].details)["reason"]
    assert REASONS[case] in reason, (case, reason)


def test_provider_token_is_accepted_and_groups_map_to_roles(
    provider: Provider, server: tuple[str, Platform]
) -> None:
    url, platform = server
    token = client_credentials_token(platform.settings.identity)  # the CLI's login flow
    answer = httpx.get(f"{url}/whoami", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "ci-bot"
    assert body["kind"] == "service"
    assert "fraud:model_approver" in body["roles"]


def test_no_or_garbled_credentials_are_401(server: tuple[str, Platform]) -> None:
    url, _ = server
    assert httpx.get(f"{url}/whoami").status_code == 401
    assert (
        httpx.get(f"{url}/whoami", headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code
        == 401
    )
    assert (
        httpx.get(f"{url}/whoami", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    )


def test_ghaf_token_works_over_http_until_revoked(server: tuple[str, Platform]) -> None:
    url, platform = server
    bind_role(platform, platform.admin(), "svc-scorer", "model_server", project="fraud")
    new = create_token(platform, platform.admin(), "svc-scorer", project="fraud")
    headers = {"Authorization": f"Bearer {new.secret}"}
    answer = httpx.get(f"{url}/whoami", headers=headers)
    assert answer.status_code == 200
    assert "fraud:model_server" in answer.json()["roles"]
    revoke_token(platform, platform.admin(), new.info.token_id, project="fraud")
    assert httpx.get(f"{url}/whoami", headers=headers).status_code == 401


def test_cli_login_with_client_credentials_then_whoami(
    provider: Provider, server: tuple[str, Platform]
) -> None:
    _, platform = server
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHAF_")}
    env.update(
        GHAF_HOME=str(platform.settings.home),
        GHAF_IDENTITY__ISSUER=provider.issuer,
        GHAF_IDENTITY__AUDIENCE=AUDIENCE,
        GHAF_IDENTITY__CLIENT_ID="ci-bot",
        GHAF_IDENTITY__CLIENT_SECRET=SECRET,
        GHAF_IDENTITY__ROLE_MAPPING=json.dumps({"ml-approvers": ["fraud:model_approver"]}),
    )

    def ghaf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ghaf", *args], capture_output=True, text=True, env=env
        )

    assert ghaf("login").returncode == 3
    login = ghaf("login", "--client-credentials")
    assert login.returncode == 0, login.stderr
    credential = platform.settings.home / "credentials" / "token"
    assert credential.stat().st_mode & 0o777 == 0o600
    who = ghaf("whoami")
    assert who.returncode == 0, who.stderr
    assert "ci-bot (service" in who.stdout and "fraud:model_approver" in who.stdout
    env["GHAF_IDENTITY__CLIENT_SECRET"] = "wrong"
    refused = ghaf("login", "--client-credentials")
    assert refused.returncode == 6 and "invalid_client" in refused.stderr
