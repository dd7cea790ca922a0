"""OIDC at the real doors: ``ghaf serve`` and ``ghaf features serve`` with a real provider.

The npm ``oidc-provider`` issues client-credentials JWTs carrying each client's groups;
the home's ``ghaf.toml`` names the issuer, the audience and which group holds which
role, and both server processes read it. A token whose group maps to ``model_server``
is served at both; one without a group, or whose group maps to a role lacking the
action, is 403 and a ``denied`` record naming its subject; every forged JWT is 401 and
an ``auth.authenticate`` denial naming the subject it claimed, at each server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from ghaf.access.http_auth import AUTH_ACTION
from ghaf.platform import Platform
from ghaf.security.oidc import client_credentials_token
from ghaf.settings import IdentitySettings
from tests.integration.oidc_support import (
    AUDIENCE,
    REASONS,
    REFUSALS,
    SECRET,
    Provider,
    claims,
    run_provider,
    sign,
)
from tests.integration.served_home import (
    FEATURES,
    oip,
    open_served_home,
    start_together,
    toml_section,
)
from tests.unit.serving.server_processes import ServerProcess, audit_records, bearer

pytestmark = pytest.mark.slow

PROJECT = "default"
SCORERS = "ml-scorers"
GROUPS = {
    "scorer-app": [SCORERS],  # -> model_server here: model.predict and features.read
    "audit-app": ["ml-auditors"],  # -> auditor: neither action
    "elsewhere-app": ["other-scorers"],  # -> model_server in another project
    "nobody-app": [],  # no group, no role
}
ROLE_MAPPING = {
    SCORERS: [f"{PROJECT}:model_server"],
    "ml-auditors": [f"{PROJECT}:auditor"],
    "other-scorers": ["other:model_server"],
}
INFER = "/v2/models/fraud/infer"
READ = "/get-online-features"


@dataclass
class Doors:
    """The provider, the home both servers share, and the two running servers."""

    provider: Provider
    platform: Platform
    rows: np.ndarray
    model: ServerProcess
    features: ServerProcess

    def token(self, client: str) -> str:
        """An access token the provider issues to ``client`` (client credentials)."""
        identity = IdentitySettings(
            issuer=self.provider.issuer,
            audience=AUDIENCE,
            client_id=client,
            client_secret=SecretStr(SECRET),
        )
        return client_credentials_token(identity)

    def attempts(self, token: str) -> Iterator[tuple[str, httpx.Response]]:
        """(server, reply) for one scoring, then one feature read, with ``token``; each
        request is sent when its turn comes, so a test can look at the audit in between."""
        headers = bearer(token)
        yield "model", httpx.post(self.model.url + INFER, json=oip(self.rows), headers=headers)
        yield "features", httpx.post(self.features.url + READ, json=FEATURES, headers=headers)


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    work = tmp_path_factory.mktemp("oidc-servers")
    with run_provider(work / "provider", GROUPS) as provider:
        identity = {"issuer": provider.issuer, "audience": AUDIENCE}
        ghaf_toml = toml_section("identity", identity) + toml_section(
            "identity.role_mapping", ROLE_MAPPING
        )
        platform, rows = open_served_home(work / "home", work, ghaf_toml)
        assert platform.default_project == PROJECT
        assert platform.settings.identity.role_mapping == ROLE_MAPPING
        home = platform.settings.home
        model = ServerProcess(home, ("serve", "fraud@champion"), "/v2/health/ready",
                              work / "serve.log")  # fmt: skip
        features = ServerProcess(home, ("features", "serve"), "/health", work / "features.log")
        try:
            start_together(model, features)
            yield Doors(provider, platform, rows, model, features)
        finally:
            logs = model.stop() + features.stop()
            platform.close()
    assert "Traceback" not in logs


def test_a_provider_token_with_the_mapped_group_is_served_at_both(doors: Doors) -> None:
    token = doors.token("scorer-app")
    (_, scored), (_, read) = doors.attempts(token)
    assert scored.status_code == 200, scored.text
    assert len(scored.json()["outputs"][0]["data"]) == 2 * len(doors.rows)
    assert read.status_code == 200, read.text
    assert len(read.json()["features"]["spend"]) == 2


@pytest.mark.parametrize("client", ["nobody-app", "audit-app", "elsewhere-app"])
def test_a_provider_token_without_the_role_is_403_and_audited(doors: Doors, client: str) -> None:
    token = doors.token(client)
    for server, reply in doors.attempts(token):
        assert reply.status_code == 403, (server, reply.text)
    predict = audit_records(doors.platform, outcome="denied", action="model.predict")
    read = audit_records(doors.platform, outcome="denied", action="features.read")
    assert [(r.resource, r.project) for r in predict if r.actor == client] == [
        ("model:fraud:1", PROJECT)
    ]
    assert [(r.resource, r.project) for r in read if r.actor == client] == [
        ("feature_view:customer_stats", PROJECT)
    ]


def test_a_well_formed_self_minted_jwt_is_served(doors: Doors) -> None:
    """The control case: each forgery below differs from this token in one respect only."""
    token = sign(doors.provider, claims(doors.provider, sub="control", groups=[SCORERS]))
    for server, reply in doors.attempts(token):
        assert reply.status_code == 200, (server, reply.text)


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_forged_jwt_is_401_and_audited_at_both_servers(doors: Doors, case: str) -> None:
    subject = "forger-" + re.sub(r"[^a-z0-9]+", "-", case.lower())
    token = REFUSALS[case](doors.provider, sub=subject, groups=[SCORERS])
    claimed = f"credential:jwt:{subject} (unverified)"

    def refusals() -> list[str]:
        rows = audit_records(doors.platform, outcome="denied", action=AUTH_ACTION)
        mine = [r for r in rows if r.resource == claimed]
        assert all(r.actor == "anonymous" and r.project == PROJECT for r in mine)
        assert all(r.source and r.source.startswith("127.0.0.1:") for r in mine)
        return [json.loads(r.details)["reason"] for r in mine]

    for count, (server, reply) in enumerate(doors.attempts(token), start=1):
        assert reply.status_code == 401, (case, server, reply.text)
        assert reply.headers["www-authenticate"].startswith("Bearer"), server
        reasons = refusals()
        assert len(reasons) == count, (case, server, reasons)  # one record per refusal
        assert REASONS[case] in reasons[-1], (case, server, reasons[-1])
