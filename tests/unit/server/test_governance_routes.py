"""Governance over ``ghaf server``: keys, policies, principals, break glass, checkpoints.

A real server process on 127.0.0.1, called over real HTTP with each person's own token.
What people rely on: home-wide actions need a binding on every project ('*'); a project's
policies are changed by its own people and invisible to another project's (404 to read,
403 to change, audited); break glass takes two different people; bad input is a 400
naming the field, with nothing stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from sqlalchemy import select

from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.registry import register_model
from ghaf.registry.release import get_release_policy
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.keys import LocalKeyProvider
from ghaf.testing.people import mint, person
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
STRICT = "name: production\nmetrics:\n  auc: {min: 0.75}\n"
RELEASE = "version: 1\nprotected_aliases: [champion]\nrequires:\n  approvals: 2\n"
REASON = "INC-231: champion scores NaN since 09:10, restoring v1"


class Home:
    """Two projects, their people's tokens, and the server they call."""

    def __init__(self, platform: Platform, server: ServerProcess, tokens: dict[str, str]) -> None:
        self.platform = platform
        self.server = server
        self.tokens = tokens

    def client(self, who: str) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.tokens[who]}"}
        return httpx.Client(base_url=self.server.url + "/api/v1", headers=headers, timeout=60)

    def audit(self, action: str) -> list[tuple[str, str, str]]:
        """(actor, outcome, project) of each record of ``action``, oldest first."""
        with self.platform.read_session() as session:
            rows = session.execute(
                select(AuditRecordRow).where(AuditRecordRow.action == action)
            ).scalars()
            return [(r.actor, r.outcome, r.project) for r in rows]


@pytest.fixture
def home(platform: Platform, tmp_path: Path) -> Iterator[Home]:
    admin = platform.admin()
    for project in ("fraud", "retail"):
        create_project(platform, admin, project)
    everywhere = ["project_admin", "auditor"]
    owner = ["project_admin", "model_approver"]
    tokens = {
        "hana": mint(platform, "hana", everywhere, project="*", bind_on="*"),
        "otto": mint(platform, "otto", owner, project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", owner, project="retail", bind_on="retail"),
        "remy": mint(platform, "remy", ["release_manager"], project="fraud", bind_on="fraud"),
        "ben": mint(platform, "ben", ["model_approver"], project="fraud", bind_on="fraud"),
    }
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield Home(platform, server, tokens)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def _register_churn(platform: Platform, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(3).normal(size=(40, 3))
    saved = tmp_path / "model"
    save_model(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)), saved)
    fraud = platform.in_project("fraud")
    register_model(
        fraud, person(fraud, "alice", ["data_scientist"], project="fraud"), "churn", saved
    )


def test_a_home_wide_admin_checkpoints_and_reads_keys_but_a_project_admin_does_not(
    home: Home,
) -> None:
    keys = LocalKeyProvider(home.platform.settings.kek_path)
    with home.client("hana") as hana, home.client("otto") as otto:
        made = hana.post("/audit/checkpoints")
        assert made.status_code == 201, made.text
        assert made.json()["size"] > 0 and len(made.json()["root"]) == 64
        assert home.audit("audit.checkpoint") == [("hana", "allowed", "*")]
        verified = hana.get("/audit/verify").json()
        assert verified["status"] in ("valid", "pending") and verified["checkpoints"] >= 1
        listed = hana.get("/keys").json()
        assert listed["kek"] == keys.key_id
        assert listed["versions"] == [{"version": 1, "state": "live", "current": True}]
        assert [k["this_home"] for k in listed["trusted"]] == [True]
        material = orjson.loads(home.platform.settings.kek_path.read_bytes())["versions"]["1"]
        assert material["key"] not in hana.get("/keys").text  # versions, never key material
        # A project's admin holds no binding on every project: refused, audited.
        assert otto.post("/audit/checkpoints").status_code == 403
        assert otto.get("/keys").status_code == 403
        assert otto.get("/audit/verify").status_code == 403
    assert home.audit("audit.checkpoint")[-1] == ("otto", "denied", "*")


def partner_pem() -> str:
    """A fresh ECDSA P-256 public key, as another home would send it to be trusted."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def test_a_home_wide_key_custodian_rotates_shreds_and_trusts_and_no_one_else(
    home: Home,
) -> None:
    """keys.* over HTTP: a key custodian bound on every project ('*') rotates the KEK,
    destroys the old version and trusts a partner's key, each audited under its own name
    (the trusted key by its fingerprint); a project's admin, a key custodian bound in one
    project and a home-wide admin are refused, audited, and the KEK does not change."""
    platform = home.platform
    kate = mint(platform, "kate", ["key_custodian"], project="*", bind_on="*")
    kirk = mint(platform, "kirk", ["key_custodian"], project="fraud", bind_on="fraud")
    home.tokens.update(kate=kate, kirk=kirk)
    keys = LocalKeyProvider(platform.settings.kek_path)
    before = platform.artifacts.put_bytes(b"written under version 1")
    pem = partner_pem()
    with home.client("kate") as custodian:
        for who in ("otto", "kirk", "hana"):
            with home.client(who) as other:
                refused = other.post("/keys/rotate")
                assert refused.status_code == 403, (who, refused.text)
                assert "bound on '*'" in refused.json()["title"]
                assert other.delete("/keys/versions/1").status_code == 403
                assert other.post("/keys/trusted", json={"pem": pem}).status_code == 403
        assert keys.versions() == {1: "live"} and keys.current_version() == 1
        with home.client("kirk") as kirk_client:
            assert kirk_client.get("/keys").status_code == 403
        rotated = custodian.post("/keys/rotate")
        assert rotated.status_code == 200, rotated.text
        assert rotated.json() == {
            "version": 2, "artifacts": 1, "rewrapped": 1, "resumed": False, "shredded": 0,
            "log_files": 0, "log_rewrapped": 0, "log_unreadable": 0,  # no prediction log here
        }  # fmt: skip
        assert keys.current_version() == 2
        destroyed = custodian.delete("/keys/versions/1")
        assert destroyed.status_code == 200, destroyed.text
        assert destroyed.json() == {"version": 1, "shredded": []}
        trusted = custodian.post("/keys/trusted", json={"pem": pem})
        assert trusted.status_code == 201, trusted.text
        fingerprint = trusted.json()["fingerprint"]
        listed = custodian.get("/keys").json()
        assert [
            (v["version"], v["state"].split()[0], v["current"]) for v in listed["versions"]
        ] == [
            (1, "destroyed", False),
            (2, "live", True),
        ]
        assert fingerprint[:16] in [k["name"] for k in listed["trusted"]]
        # Bad input is a 400 naming the field, with nothing changed.
        bad = custodian.post("/keys/trusted", json={"pem": "not a key"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "pem"
        assert custodian.delete("/keys/versions/0").status_code == 400
        current = custodian.delete("/keys/versions/2")  # the current one: the caller's mistake
        assert current.status_code == 400 and "current version" in current.json()["title"]
    # Every server worker and this process see the rotation: the artifact reads, re-wrapped.
    assert platform.artifacts.read_bytes(before.digest) == b"written under version 1"
    assert keys.versions()[2] == "live" and keys.versions()[1].startswith("destroyed")
    denied = [("otto", "denied", "*"), ("kirk", "denied", "*"), ("hana", "denied", "*")]
    assert home.audit("keys.rotate") == [*denied, ("kate", "allowed", "*")]
    assert home.audit("keys.destroy_version")[:4] == [*denied, ("kate", "allowed", "*")]
    assert home.audit("keys.trust") == [*denied, ("kate", "allowed", "*")]
    with platform.read_session() as session:
        resources = session.execute(
            select(AuditRecordRow.resource).where(
                AuditRecordRow.action == "keys.trust", AuditRecordRow.outcome == "allowed"
            )
        ).scalars()
        assert list(resources) == [f"public_key:{fingerprint}"]


def test_principals_and_groups_are_made_by_a_home_wide_admin(home: Home) -> None:
    with home.client("hana") as hana, home.client("otto") as otto:
        made = hana.post("/principals", json={"name": "gina", "description": "risk analyst"})
        assert made.status_code == 201, made.text
        assert made.json() == {"name": "gina", "kind": "user", "description": "risk analyst"}
        assert hana.post("/principals", json={"name": "risk", "kind": "group"}).status_code == 201
        joined = hana.post("/groups/risk/members", json={"member": "gina"})
        assert joined.status_code == 201, joined.text
        assert hana.post("/groups/risk/members", json={"member": "gina"}).status_code == 409
        assert hana.post("/groups/gina/members", json={"member": "x"}).status_code == 404
        again = hana.post("/principals", json={"name": "gina"})
        assert again.status_code == 409
        bad = hana.post("/principals", json={"name": "gina", "kind": "robot"})
        assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "kind"
        groups = hana.get("/principals", params={"kind": "group"}).json()["principals"]
        assert [(g["name"], g["members"]) for g in groups] == [("risk", ["gina"])]
        everyone = [p["name"] for p in hana.get("/principals").json()["principals"]]
        assert {"gina", "risk", "otto", "rita"} <= set(everyone)
        # A project's admin cannot create principals or read the directory.
        refused = otto.post("/principals", json={"name": "mallory"})
        assert refused.status_code == 403 and "principal.create" in refused.json()["title"]
        assert otto.post("/groups/risk/members", json={"member": "otto"}).status_code == 403
        assert otto.get("/principals").status_code == 403
        assert "mallory" not in [p["name"] for p in hana.get("/principals").json()["principals"]]
    assert home.audit("principal.create")[-1] == ("otto", "denied", "*")
    assert home.audit("group.add_member")[-1] == ("otto", "denied", "*")


def test_a_project_owner_sets_its_policies_and_another_project_sees_none(home: Home) -> None:
    fraud = "/projects/fraud"
    with home.client("otto") as otto, home.client("rita") as rita:
        default = otto.get(f"{fraud}/release-policy").json()
        assert (default["project"], default["version"]) == ("fraud", 0)
        assert default["policy"]["requires"]["approvals"] == 1
        stored = otto.put(f"{fraud}/release-policy", json={"text": RELEASE})
        assert stored.status_code == 200, stored.text
        assert (stored.json()["version"], stored.json()["created_by"]) == (1, "otto")
        assert otto.get(f"{fraud}/release-policy").json()["policy"]["requires"]["approvals"] == 2
        code = otto.patch(
            f"{fraud}/code-policy", json={"allow": ["numpy", "math"], "reason": "reviewed"}
        )
        assert code.status_code == 200, code.text
        assert (code.json()["modules"], code.json()["enabled"]) == (["math", "numpy"], True)
        revoked = otto.patch(f"{fraud}/code-policy", json={"revoke": ["math"]}).json()
        assert (revoked["modules"], revoked["version"]) == (["numpy"], 2)
        # Retail's owner reads nothing of fraud's and changes nothing (refusals audited).
        assert rita.get(f"{fraud}/release-policy").status_code == 404
        assert rita.get(f"{fraud}/code-policy").status_code == 404
        assert rita.get(f"{fraud}/release-policy").json()["title"] == (
            "project 'fraud' does not exist"
        )
        put = rita.put(f"{fraud}/release-policy", json={"text": "version: 1\n"})
        assert put.status_code == 403, put.text
        assert rita.patch(f"{fraud}/code-policy", json={"allow": ["scipy"]}).status_code == 403
        assert rita.get("/projects/retail/release-policy").json()["version"] == 0
    assert home.audit("release_policy.set") == [
        ("otto", "allowed", "fraud"),
        ("rita", "denied", "fraud"),
    ]
    assert home.audit("code_policy.set")[-1] == ("rita", "denied", "fraud")
    assert get_release_policy(home.platform, "fraud").version == 1


def test_bad_policy_input_is_a_400_naming_the_field_and_nothing_is_stored(home: Home) -> None:
    fraud = "/projects/fraud"
    with home.client("otto") as otto:
        for body, field in (
            ({}, "text"),
            ({"text": "requires: {approvals: -1}\n"}, "text"),
            ({"text": "version: 1\nsurprise: true\n"}, "text"),
            ({"text": "- a list"}, "text"),
        ):
            answer = otto.put(f"{fraud}/release-policy", json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["errors"][0]["field"] == field, answer.json()
        assert (
            otto.put("/projects/Not A Name/release-policy", json={"text": RELEASE}).status_code
            == 400
        )
        bad_module = otto.patch(f"{fraud}/code-policy", json={"allow": ["os; rm"]})
        assert bad_module.status_code == 400
        assert bad_module.json()["errors"][0]["field"] == "allow.0"
        never = otto.patch(f"{fraud}/code-policy", json={"allow": ["subprocess"]})
        assert never.status_code == 400 and "subprocess" in never.json()["title"]
        assert otto.patch(f"{fraud}/code-policy", json={}).status_code == 400
        bad_gate = otto.post("/gate-policies", json={"text": "metrics: [1]\n", "project": "fraud"})
        assert bad_gate.status_code == 400 and bad_gate.json()["errors"][0]["field"] == "text"
        unprintable = otto.post("/gate-policies", json={"text": "\x9c", "project": "fraud"})
        assert unprintable.status_code == 400, unprintable.text
        assert unprintable.json()["errors"][0]["field"] == "text"
        assert (
            "text:1: not valid YAML: character #x009c" in unprintable.json()["errors"][0]["message"]
        )
        assert otto.get(f"{fraud}/code-policy").json()["version"] == 0
        assert otto.get("/gate-policies").json()["policies"] == []
    assert get_release_policy(home.platform, "fraud").version == 0
    assert home.audit("release_policy.set") == []


def test_gate_policies_belong_to_their_project(home: Home, tmp_path: Path) -> None:
    _register_churn(home.platform, tmp_path)
    with home.client("otto") as otto, home.client("rita") as rita:
        added = otto.post(
            "/gate-policies", json={"text": STRICT, "project": "fraud", "attach_project": True}
        )
        assert added.status_code == 201, added.text
        stored = added.json()
        assert (stored["name"], stored["version"], stored["project"]) == ("production", 1, "fraud")
        assert [(a["kind"], a["target"]) for a in stored["attachments"]] == [("project", "fraud")]
        pinned = otto.post("/gate-policies/production:1/attachments", json={"model": "churn"})
        assert pinned.status_code == 200, pinned.text
        assert (pinned.json()["kind"], pinned.json()["target"]) == ("model", "churn")
        assert otto.get("/gate-policies/production").json()["latest"] == 1
        assert [p["name"] for p in otto.get("/gate-policies").json()["policies"]] == ["production"]
        # Retail sees none of it and cannot attach it, reuse its name, or reach fraud's model.
        assert rita.get("/gate-policies").json()["policies"] == []
        hidden = rita.get("/gate-policies/production")
        assert hidden.status_code == 404 and "does not exist" in hidden.json()["title"]
        attach = rita.post("/gate-policies/production/attachments", json={"project": "retail"})
        assert attach.status_code == 404
        taken = rita.post("/gate-policies", json={"text": STRICT, "project": "retail"})
        assert taken.status_code == 403, taken.text
        to_model = rita.post(
            "/gate-policies",
            json={"text": STRICT, "project": "retail", "name": "r", "model": "churn"},
        )
        assert to_model.status_code == 404
        both = otto.post(
            "/gate-policies/production/attachments", json={"model": "churn", "project": "fraud"}
        )
        assert both.status_code == 400
    assert home.audit("gate_policy.add") == [
        ("otto", "allowed", "fraud"),
        ("rita", "denied", "fraud"),
    ]


def test_break_glass_takes_two_different_people(home: Home, tmp_path: Path) -> None:
    _register_churn(home.platform, tmp_path)
    with (
        home.client("remy") as remy,
        home.client("ben") as ben,
        home.client("rita") as rita,
    ):
        # The champion alias is protected: an unapproved, unsigned-by-policy version is refused.
        assert remy.put("/models/churn/aliases/champion", json={"version": 1}).status_code == 403
        short = remy.post(
            "/models/churn/break-glass", json={"version": 1, "alias": "champion", "reason": "now"}
        )
        assert short.status_code == 400 and "reason" in short.json()["title"]
        both = remy.post(
            "/models/churn/break-glass",
            json={"version": 1, "alias": "champion", "stage": "production", "reason": REASON},
        )
        assert both.status_code == 400
        asked = remy.post(
            "/models/churn/break-glass", json={"version": 1, "alias": "champion", "reason": REASON}
        )
        assert asked.status_code == 201, asked.text
        request = asked.json()
        assert (request["status"], request["requested_by"]) == ("pending", "remy")
        pending = ben.get("/break-glass", params={"pending": True}).json()["requests"]
        assert [r["id"] for r in pending] == [request["id"]]
        # Another project sees no request and cannot act on one.
        assert rita.get("/break-glass").json()["requests"] == []
        assert rita.post(f"/break-glass/{request['id']}/confirm").status_code == 404
        assert (
            rita.post(
                "/models/churn/break-glass",
                json={"version": 1, "alias": "champion", "reason": REASON},
            ).status_code
            == 404
        )
        # Not by the requester: the second person confirms it.
        own = remy.post(f"/break-glass/{request['id']}/confirm")
        assert own.status_code == 403, own.text
        done = ben.post(f"/break-glass/{request['id']}/confirm")
        assert done.status_code == 200, done.text
        assert "champion" in done.json()["aliases"]
        assert ben.post(f"/break-glass/{request['id']}/confirm").status_code == 404
        assert ben.get("/break-glass", params={"pending": True}).json()["requests"] == []
    # The short reason got past the door (the policy sets the length) and failed in the act.
    assert home.audit("model.break_glass_request") == [
        ("remy", "failed", "fraud"),
        ("remy", "allowed", "fraud"),
    ]
    # Confirming it again found no pending request: a failure in the act, nothing moved.
    assert [(a, o) for a, o, _ in home.audit("model.break_glass")] == [
        ("remy", "denied"),
        ("ben", "allowed"),
        ("ben", "failed"),
    ]
