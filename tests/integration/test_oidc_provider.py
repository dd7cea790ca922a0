"""OIDC against a real provider (npm oidc-provider) through a real HTTP server on 127.0.0.1.

The provider signs with a key this test makes, so the test can also mint JWTs that are
valid in every respect but one: each of SECURITY.md's refusal set must be refused with
401 and an audit record, and a token the provider itself issues must be accepted with
its groups mapped to roles.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
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
from tests.conftest import service_missing

OIDC_DIR = Path(__file__).parent / "oidc"
AUDIENCE = "urn:ghaf:api"
KID = "ghaf-test-1"
SECRET = "s3cret-" + "x" * 40

pytestmark = pytest.mark.slow
NODE_FIX = "scripts/install_node_deps.sh installs it"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Provider:
    def __init__(self, issuer: str, key: rsa.RSAPrivateKey) -> None:
        self.issuer = issuer
        self.key = key


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    node = shutil.which("node")
    if node is None:
        service_missing("Node.js", "node not on PATH", NODE_FIX)
    if not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        npm = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, capture_output=True, text=True
        )
        if npm.returncode != 0:
            service_missing("oidc-provider", f"npm ci failed: {npm.stderr[-300:]}", NODE_FIX)
    key = rsa_key()
    jwk = json.loads(RSAAlgorithm.to_jwk(key))
    jwk.pop("key_ops", None)
    jwk.update(kid=KID, alg="RS256", use="sig")
    port = free_port()
    config = {
        "port": port,
        "jwk": jwk,
        "audience": AUDIENCE,
        "cookie_key": "c" * 32,
        "clients": [
            {"client_id": "ci-bot", "client_secret": SECRET, "groups": ["ml-approvers"]},
            {"client_id": "nobody", "client_secret": SECRET, "groups": []},
        ],
    }
    config_file = tmp_path_factory.mktemp("oidc") / "config.json"
    config_file.write_text(json.dumps(config))
    log_file = config_file.with_name("provider.log")
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [node, str(OIDC_DIR / "provider.mjs"), str(config_file)], stdout=log, stderr=log
        )
    try:
        issuer = None
        deadline = time.monotonic() + 30
        while issuer is None and time.monotonic() < deadline and process.poll() is None:
            for line in log_file.read_text().splitlines():
                if line.startswith("ready "):
                    issuer = line.split()[1]
            time.sleep(0.05)
        assert issuer, f"oidc-provider did not start: {log_file.read_text()[-500:]}"
        yield Provider(issuer, key)
    finally:
        process.terminate()
        process.wait(timeout=10)


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


def claims(provider: Provider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": provider.issuer,
        "aud": AUDIENCE,
        "sub": "mallory",
        "iat": now,
        "exp": now + 300,
        "groups": ["ml-approvers"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(provider: Provider, payload: dict[str, Any], *, key: Any = None, kid: str = KID) -> str:
    return jwt.encode(payload, key or provider.key, algorithm="RS256", headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def alg_none(provider: Provider) -> str:
    header = b64(json.dumps({"alg": "none", "kid": KID, "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(claims(provider)).encode())}."


def hs256_confusion(provider: Provider) -> str:
    public_pem = provider.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "kid": KID, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims(provider)).encode())
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(mac)}"


def tampered(provider: Provider) -> str:
    header, body, signature = sign(provider, claims(provider, groups=[])).split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["groups"] = ["ml-approvers", "admins"]
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


REFUSALS: dict[str, Callable[[Provider], str]] = {
    "alg none": alg_none,
    "RS256->HS256 confusion": hs256_confusion,
    "expired": lambda p: sign(
        p, claims(p, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    ),
    "future nbf": lambda p: sign(p, claims(p, nbf=int(time.time()) + 3600)),
    "missing exp": lambda p: sign(p, claims(p, exp=None)),
    "wrong aud": lambda p: sign(p, claims(p, aud="urn:someone:else")),
    "wrong iss": lambda p: sign(p, claims(p, iss="http://127.0.0.1:1/evil")),
    "tampered payload": tampered,
    "foreign key": lambda p: sign(p, claims(p), key=rsa_key()),
    "unknown kid": lambda p: sign(p, claims(p), key=rsa_key(), kid="not-in-jwks"),
}

REASONS = {
    "alg none": "algorithm 'none' is not allowed",
    "RS256->HS256 confusion": "algorithm 'HS256' is not allowed",
    "expired": "expired",
    "future nbf": "not yet valid",
    "missing exp": '"exp"',
    "wrong aud": "Audience doesn't match",
    "wrong iss": "Invalid issuer",
    "tampered payload": "Signature verification failed",
    "foreign key": "Signature verification failed",
    "unknown kid": "'not-in-jwks' is not in the issuer's JWKS",
}


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
