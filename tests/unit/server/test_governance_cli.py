"""The governance commands against ``ghaf server`` (``--url``) print what they print on the
home: policies, gate policies, keys, roles, principals, tokens and the audit trail, as
tables and as JSON, with the same errors and exit codes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ghaf.platform import Platform
from ghaf.projects import create_project
from ghaf.testing.people import mint
from tests.unit.server.cli_runner import ghaf
from tests.unit.server.test_governance_routes import REASON, _register_churn, partner_pem
from tests.unit.serving.server_processes import ServerProcess

pytestmark = pytest.mark.slow
RELEASE = "version: 1\nprotected_aliases: [champion]\nrequires:\n  approvals: 2\n"
STRICT = "name: production\nmetrics:\n  auc: {min: 0.75}\n"


@dataclass
class Served:
    platform: Platform
    url: str
    tokens: dict[str, str]

    def both(self, who: str, *args: str) -> tuple[str, str]:
        """``ghaf ARGS`` as ``who`` on the home, then against the server: both stdouts,
        once each has exited 0."""
        token = self.tokens[who]
        local = ghaf("--home", str(self.platform.settings.home), "--token", token, *args)
        remote = self.remote(who, *args)
        assert local.returncode == remote.returncode == 0, (args, local.stderr, remote.stderr)
        return local.stdout, remote.stdout

    def remote(self, who: str, *args: str) -> subprocess.CompletedProcess[str]:
        return ghaf("--url", self.url, "--token", self.tokens[who], *args)


@pytest.fixture
def served(platform: Platform, tmp_path: Path) -> Iterator[Served]:
    admin = platform.admin()
    for project in ("fraud", "retail"):
        create_project(platform, admin, project)
    owner = ["project_admin", "model_approver"]
    tokens = {
        "hana": mint(platform, "hana", ["project_admin", "auditor"], project="*", bind_on="*"),
        "otto": mint(platform, "otto", owner, project="fraud", bind_on="fraud"),
        "rita": mint(platform, "rita", owner, project="retail", bind_on="retail"),
    }
    server = ServerProcess(
        platform.settings.home, ("server",), "/health", tmp_path / "server.log"
    ).start()
    try:
        yield Served(platform, server.url, tokens)
    finally:
        log = server.stop()
    assert "Traceback" not in log


def test_policies_are_set_remotely_and_read_the_same_in_both_modes(
    served: Served, tmp_path: Path
) -> None:
    release, gate = tmp_path / "release.yaml", tmp_path / "gate.yaml"
    release.write_text(RELEASE)
    gate.write_text(STRICT)
    set_release = served.remote(
        "otto", "policy", "release", "set", str(release), "--project", "fraud"
    )
    assert set_release.returncode == 0, set_release.stderr
    assert "release policy of project fraud is now version 1" in set_release.stdout
    allowed = served.remote(
        "otto", "policy", "code", "allow", "numpy", "--project", "fraud", "--reason", "reviewed"
    )
    assert "may import numpy (version 1, set by otto)" in allowed.stdout
    added = served.remote("otto", "gate", "policies", "add", str(gate), "--project", "fraud")
    assert "gate policy production:1 stored (project fraud)" in added.stdout
    assert "attached to project fraud" in added.stdout
    for command in (
        ("policy", "release", "show", "--project", "fraud"),
        ("policy", "code", "show", "--project", "fraud"),
        ("gate", "policies", "list"),
        ("gate", "policies", "show", "production"),
    ):
        table_local, table_remote = served.both("otto", *command)
        assert table_remote == table_local, command
        json_local, json_remote = served.both("otto", *command, "--output", "json")
        assert json_remote == json_local, command
        json.loads(json_remote)  # one JSON document
    shown = json.loads(
        served.both("otto", "policy", "release", "show", "--project", "fraud", "-o", "json")[1]
    )
    assert (shown["version"], shown["created_by"], shown["text"]) == (1, "otto", RELEASE)
    # Another project's owner reads none of it: the same refusal as a project that is not there.
    hidden = served.remote("rita", "policy", "release", "show", "--project", "fraud")
    assert hidden.returncode == 4 and "project 'fraud' does not exist" in hidden.stderr
    listed = served.remote("rita", "gate", "policies", "list", "-o", "json")
    assert json.loads(listed.stdout) == []
    refused = served.remote("rita", "policy", "code", "allow", "scipy", "--project", "fraud")
    assert refused.returncode == 6
    # A bad file is refused before anything is sent, as on the home.
    bad = tmp_path / "bad.yaml"
    bad.write_text("requires: {approvals: -1}\n")
    token = served.tokens["otto"]
    local = ghaf("--home", str(served.platform.settings.home), "--token", token,
                 "policy", "release", "set", str(bad), "--project", "fraud")  # fmt: skip
    remote = served.remote("otto", "policy", "release", "set", str(bad), "--project", "fraud")
    assert local.returncode == remote.returncode == 2
    assert remote.stderr.splitlines()[0] == local.stderr.splitlines()[0]


def test_people_keys_tokens_and_the_audit_trail_through_the_server(served: Served) -> None:
    for args in (
        ("roles", "principal", "risk", "--kind", "group"),
        ("roles", "principal", "gina"),
        ("roles", "add-member", "risk", "gina"),
        ("roles", "bind", "group:risk", "viewer", "--project", "fraud"),
    ):
        made = served.remote("hana", *args)
        assert made.returncode == 0, (args, made.stderr)
    checkpoint = served.remote("hana", "audit", "checkpoint")
    assert checkpoint.stdout.startswith("checkpoint at ")
    minted = served.remote("otto", "tokens", "create", "otto", "--project", "fraud", "-o", "json")
    token_id = json.loads(minted.stdout)["info"]["token_id"]
    revoked = served.remote("otto", "tokens", "revoke", token_id)
    assert revoked.stdout.strip() == f"revoked token {token_id} of otto"
    for who, command in (
        ("hana", ("keys", "list")),
        ("hana", ("roles", "principals")),
        ("otto", ("roles", "list", "--project", "fraud")),
        ("otto", ("tokens", "list", "--project", "fraud")),
    ):
        table_local, table_remote = served.both(who, *command)
        assert table_remote == table_local, command
        json_local, json_remote = served.both(who, *command, "--output", "json")
        assert json_remote == json_local, command
    groups = json.loads(
        served.both("hana", "roles", "principals", "--kind", "group", "-o", "json")[1]
    )
    assert [(g["name"], g["members"]) for g in groups["principals"]] == [("risk", ["gina"])]
    export_local, export_remote = served.both("hana", "audit", "export", "--project", "fraud")
    assert export_remote == export_local
    assert {json.loads(line)["action"] for line in export_remote.splitlines()} >= {
        "role.bind",
        "token.create",
        "token.revoke",
    }
    verified = served.remote("hana", "audit", "verify")
    assert verified.returncode == 0 and "audit trail valid" in verified.stdout
    # A project's admin holds nothing home-wide.
    assert served.remote("otto", "roles", "principal", "mallory").returncode == 6
    assert served.remote("otto", "audit", "export", "--project", "fraud").returncode == 6


def test_a_home_wide_key_custodian_manages_keys_in_both_modes(
    served: Served, tmp_path: Path
) -> None:
    """keys.* take a key custodian bound on '*' (or the home's owner): rotate, destroy a
    version and trust a key as a token on the home and against the server; anyone else
    (a home-wide admin, a custodian bound in one project) is refused the same way."""
    platform, home = served.platform, str(served.platform.settings.home)
    served.tokens["kate"] = mint(platform, "kate", ["key_custodian"], project="*", bind_on="*")
    served.tokens["kirk"] = mint(
        platform, "kirk", ["key_custodian"], project="fraud", bind_on="fraud"
    )
    for who in ("hana", "kirk"):
        local = ghaf("--home", home, "--token", served.tokens[who], "keys", "rotate")
        remote = served.remote(who, "keys", "rotate")
        assert local.returncode == remote.returncode == 6, (who, local.stderr, remote.stderr)
        assert local.stderr.splitlines()[0] == remote.stderr.splitlines()[0]
        assert "bound on '*'" in remote.stderr
    kate = ("--token", served.tokens["kate"])
    local = ghaf("--home", home, *kate, "keys", "rotate", "-o", "json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["version"] == 2
    remote = served.remote("kate", "keys", "rotate", "-o", "json")
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["version"] == 3
    destroyed = served.remote("kate", "keys", "destroy-version", "1", "--yes", "-o", "json")
    assert json.loads(destroyed.stdout) == {"version": 1, "shredded": []}
    partner = tmp_path / "partner.pub.pem"
    partner.write_text(partner_pem())
    trusted = served.remote("kate", "keys", "trust", str(partner), "-o", "json")
    assert trusted.returncode == 0, trusted.stderr
    fingerprint = json.loads(trusted.stdout)["fingerprint"]
    again = ghaf("--home", home, *kate, "keys", "trust", str(partner), "-o", "json")
    assert json.loads(again.stdout) == {"fingerprint": fingerprint}
    listed_local, listed_remote = served.both("kate", "keys", "list", "-o", "json")
    assert listed_local == listed_remote
    listed = json.loads(listed_remote)
    assert [(v["version"], v["current"]) for v in listed["versions"]] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    assert listed["versions"][0]["state"].startswith("destroyed")
    assert fingerprint[:16] in [k["name"] for k in listed["trusted"]]
    missing = served.remote("kate", "keys", "trust", str(tmp_path / "absent.pem"))
    assert missing.returncode == 4 and "cannot read public key file" in missing.stderr


def test_break_glass_through_the_server_prints_what_the_home_prints(
    served: Served, tmp_path: Path
) -> None:
    """Request, list and confirm as on the home, table and JSON; another project sees no
    request; the requester cannot confirm their own."""
    platform, home = served.platform, str(served.platform.settings.home)
    _register_churn(platform, tmp_path)
    served.tokens["remy"] = mint(
        platform, "remy", ["release_manager"], project="fraud", bind_on="fraud"
    )
    served.tokens["ben"] = mint(
        platform, "ben", ["model_approver"], project="fraud", bind_on="fraud"
    )

    def local(who: str, *args: str) -> subprocess.CompletedProcess[str]:
        return ghaf("--home", home, "--token", served.tokens[who], "models", "break-glass", *args)

    def remote(who: str, *args: str) -> subprocess.CompletedProcess[str]:
        return served.remote(who, "models", "break-glass", *args)

    ask = ("request", "churn:1", "--alias", "champion", "--reason", REASON)
    first = remote("remy", *ask, "-o", "json")
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)
    assert (made["model"], made["version"], made["target"]) == ("churn", 1, "champion")
    assert (made["status"], made["requested_by"], made["reason"]) == ("pending", "remy", REASON)
    assert made["requested_at"].endswith("Z")
    printed = [local("remy", *ask), remote("remy", *ask)]
    ids = [made["id"] + 1, made["id"] + 2]
    for done, number in zip(printed, ids, strict=True):
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (
            f"break-glass request {number}: churn:1@champion; a second person confirms it "
            f"with `ghaf models break-glass confirm {number}`"
        )
    for command in (("list",), ("list", "--pending")):
        table_local, table_remote = served.both("ben", "models", "break-glass", *command)
        assert table_remote == table_local
        json_local, json_remote = served.both(
            "ben", "models", "break-glass", *command, "-o", "json"
        )
        assert json_remote == json_local
    listed = json.loads(json_remote)["requests"]
    assert [r["id"] for r in listed] == [ids[1], ids[0], made["id"]]  # newest first
    # Retail's owner sees none of fraud's requests and cannot confirm one.
    assert json.loads(remote("rita", "list", "-o", "json").stdout) == {"requests": []}
    hidden = remote("rita", "confirm", str(made["id"]))
    assert hidden.returncode == 4 and f"no break-glass request {made['id']}" in hidden.stderr
    # Never by the requester: refused the same way in both modes.
    own = [local("remy", "confirm", str(made["id"])), remote("remy", "confirm", str(made["id"]))]
    assert [r.returncode for r in own] == [7, 7]  # four eyes: a policy, not a role
    assert own[0].stderr.splitlines()[0] == own[1].stderr.splitlines()[0]
    confirmed = remote("ben", "confirm", str(made["id"]), "-o", "json")
    assert confirmed.returncode == 0, confirmed.stderr
    version = json.loads(confirmed.stdout)
    assert (version["name"], version["version"]) == ("churn", 1)
    assert "champion" in version["aliases"]
    again = local("ben", "confirm", str(ids[0]), "-o", "json")
    assert json.loads(again.stdout) == version
    line = f"done by ben: churn:1 (aliases: champion; stage {version['stage']})"
    assert remote("ben", "confirm", str(ids[1])).stdout.strip() == f"break-glass {ids[1]} {line}"
    assert json.loads(remote("ben", "list", "--pending", "-o", "json").stdout) == {"requests": []}
