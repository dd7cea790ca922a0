"""A real OIDC provider (npm oidc-provider) for tests, and JWTs that are wrong in one way each.

The provider signs with a key the test makes, so a test can also mint JWTs that are
valid in every respect but one: SECURITY.md's refusal set (:data:`REFUSALS`), each
carrying the subject it claims so that the audit record of its refusal can be found.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.conftest import service_missing

OIDC_DIR = Path(__file__).parent / "oidc"
AUDIENCE = "urn:ghaf:api"
KID = "ghaf-test-1"
SECRET = "s3cret-" + "x" * 40
SUBJECT = "mallory"
NODE_FIX = "scripts/install_node_deps.sh installs it"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class Provider:
    """A running provider: its issuer URL and the key it signs with."""

    issuer: str
    key: rsa.RSAPrivateKey


@contextmanager
def run_provider(
    directory: Path, groups: dict[str, list[str]], *, interactive: dict[str, Any] | None = None
) -> Iterator[Provider]:
    """Run oidc-provider on a free loopback port until the block ends.

    Args:
        directory: where its config and log are written.
        groups: client id -> the groups its client-credentials tokens carry (every
            client's secret is :data:`SECRET`).
        interactive: also sign people in through a browser: ``{"client_id": public
            client, "redirect_uris": [...], "accounts": {login: groups}}`` (the
            provider's development login form; any password).
    """
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
    config = {
        "port": free_port(),
        "jwk": jwk,
        "audience": AUDIENCE,
        "cookie_key": "c" * 32,
        "clients": [
            {"client_id": client, "client_secret": SECRET, "groups": list(client_groups)}
            for client, client_groups in groups.items()
        ],
    }
    if interactive is not None:
        config["interactive"] = interactive
    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "config.json"
    config_file.write_text(json.dumps(config))
    log_file = directory / "provider.log"
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


def claims(provider: Provider, **changes: Any) -> dict[str, Any]:
    """Claims the provider could have issued; a change to ``None`` drops the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": provider.issuer,
        "aud": AUDIENCE,
        "sub": SUBJECT,
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


class Forgery(Protocol):
    """Makes one bad JWT claiming ``sub`` with ``groups``."""

    def __call__(
        self, provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None
    ) -> str: ...


def _groups(groups: list[str] | None) -> list[str]:
    return ["ml-approvers"] if groups is None else groups


def alg_none(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    header = b64(json.dumps({"alg": "none", "kid": KID, "typ": "JWT"}).encode())
    body = claims(provider, sub=sub, groups=_groups(groups))
    return f"{header}.{b64(json.dumps(body).encode())}."


def hs256_confusion(
    provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None
) -> str:
    """HMAC-signed with the provider's *public* key: accepted by a verifier that lets the
    token pick its algorithm."""
    public_pem = provider.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "kid": KID, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims(provider, sub=sub, groups=_groups(groups))).encode())
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(mac)}"


def tampered(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    """Signed without groups, then the groups written into the payload."""
    header, body, signature = sign(provider, claims(provider, sub=sub, groups=[])).split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["groups"] = [*_groups(groups), "admins"]
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


def expired(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    now = int(time.time())
    changes = {"iat": now - 7200, "exp": now - 3600}
    return sign(provider, claims(provider, sub=sub, groups=_groups(groups), **changes))


def future_nbf(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    nbf = int(time.time()) + 3600
    return sign(provider, claims(provider, sub=sub, groups=_groups(groups), nbf=nbf))


def missing_exp(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    return sign(provider, claims(provider, sub=sub, groups=_groups(groups), exp=None))


def wrong_aud(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    aud = "urn:someone:else"
    return sign(provider, claims(provider, sub=sub, groups=_groups(groups), aud=aud))


def wrong_iss(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    iss = "http://127.0.0.1:1/evil"
    return sign(provider, claims(provider, sub=sub, groups=_groups(groups), iss=iss))


def foreign_key(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    return sign(provider, claims(provider, sub=sub, groups=_groups(groups)), key=rsa_key())


def unknown_kid(provider: Provider, *, sub: str = SUBJECT, groups: list[str] | None = None) -> str:
    payload = claims(provider, sub=sub, groups=_groups(groups))
    return sign(provider, payload, key=rsa_key(), kid="not-in-jwks")


REFUSALS: dict[str, Forgery] = {
    "alg none": alg_none,
    "RS256->HS256 confusion": hs256_confusion,
    "expired": expired,
    "future nbf": future_nbf,
    "missing exp": missing_exp,
    "wrong aud": wrong_aud,
    "wrong iss": wrong_iss,
    "tampered payload": tampered,
    "foreign key": foreign_key,
    "unknown kid": unknown_kid,
}
"""Each JWT a verifier must refuse, by name."""

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
"""Words the refusal's reason (in its audit record) contains, per case."""
