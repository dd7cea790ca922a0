"""The compliance report: each control's evidence read live from one home, gaps where
there is none, an SBOM of this environment, an HTML page that escapes what users typed,
and the same document from the CLI and the HTTP route (one in-process server).

The home (region ae-auh-1) holds: role bindings; tokens for ana (data scientist: used),
ben (approver: used), rita (release manager: used) and omar (never used); fraud:1
registered by ana, approved by ben, put on @champion by rita; fraud:2 refused on
@champion by the release policy, then released by break-glass (rita asks, ben confirms);
a KEK rotation; a pii dataset; a residency refusal; a refused OIDC subject named like
markup; a signed checkpoint over all of it.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ghaf.access.bindings import bind_role, create_principal
from ghaf.access.residency import check_residency
from ghaf.access.rotation import rotate_keys
from ghaf.access.tokens import create_token, verify_token
from ghaf.cli.main import app
from ghaf.compliance import build_report, compliance_report, environment_sbom
from ghaf.data.store import write_dataset
from ghaf.errors import InvalidInputError, PermissionDeniedError, PolicyViolationError
from ghaf.home import init_home
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, register_model, set_alias
from ghaf.registry.break_glass import confirm_break_glass, request_break_glass
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.identity import Actor, Credential
from ghaf.server.app import create_app
from ghaf.serving.server import background_server
from ghaf.settings import load_settings
from ghaf.testing.people import mint

MARKUP = "<script>alert('x')</script>"
"""What a hostile name or description holds: it must reach the page as text."""
REGION = "ae-auh-1"


@dataclass
class World:
    platform: Platform
    home: Path
    server: str
    tokens: dict[str, str]
    """name -> token secret"""
    since: str
    until: str
    made: dict[str, Any] = field(default_factory=dict)

    def token_id(self, name: str) -> str:
        return self.tokens[name].split("_")[1]

    def report(self) -> dict[str, Any]:
        """The report's sections by id, made once (the tests before the doors' read it)."""
        if not self.made:
            got = build_report(
                self.platform,
                since=datetime.fromisoformat(self.since),
                until=datetime.fromisoformat(self.until),
                generated_by="test",
            )
            self.made.update({c["id"]: c for c in got["controls"]})
        return self.made


def _as(platform: Platform, token: str) -> Actor:
    return verify_token(platform, token, source="127.0.0.1:1")


def _seed(platform: Platform, work: Path) -> dict[str, str]:
    owner = platform.admin()
    create_principal(platform, owner, "omar", description=MARKUP)
    tokens = {
        "ana": mint(platform, "ana", ["data_scientist"]),
        "ben": mint(platform, "ben", ["model_approver"]),
        "rita": mint(platform, "rita", ["release_manager"]),
        "aud": mint(platform, "aud", ["auditor"], project="*"),
        "dan": mint(platform, "dan", ["data_scientist"], project="*"),
        "root": mint(platform, owner.name, ["auditor"], project="*"),
    }
    bind_role(platform, owner, "omar", "viewer", project="*")
    tokens["omar"] = create_token(  # a token never presented
        platform, owner, "omar", project="default", roles=("viewer",), description=MARKUP
    ).secret
    ana, ben, rita = (_as(platform, tokens[n]) for n in ("ana", "ben", "rita"))
    from sklearn.linear_model import LogisticRegression

    x = np.arange(20, dtype=float).reshape(10, 2)
    model = LogisticRegression().fit(x, np.arange(10) % 2)
    save_model(model, work / "m")
    v1 = register_model(platform, ana, "fraud", work / "m")
    approve_model_version(platform, ben, v1.ref, comment="reviewed")
    set_alias(platform, rita, "fraud", "champion", v1.version)
    v2 = register_model(platform, ana, "fraud", work / "m")
    with pytest.raises(PolicyViolationError):
        set_alias(platform, rita, "fraud", "champion", v2.version)
    request = request_break_glass(
        platform, rita, "fraud", v2.version, alias="champion", reason="INC-7: v1 scores NaN"
    )
    confirm_break_glass(platform, ben, request.id)
    rotate_keys(platform, owner)
    table = pa.table({"customer_id": [1, 2], "email": ["a@x.ae", "b@x.ae"]})
    write_dataset(platform, owner, "customers", table, source="t", column_tags={"email": "pii"})
    with pytest.raises(PolicyViolationError):
        check_residency(platform, ["pii"], "eu-west-1", actor=ana, resource="dataset:customers")
    stranger = Actor(MARKUP, credential=Credential("oidc", "sub"))
    with pytest.raises(PermissionDeniedError):
        compliance_report(platform, stranger, since=datetime.now(UTC) - timedelta(days=1))
    return tokens


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("compliance")
    home = work / "home"
    home.mkdir()
    (home / "ghaf.toml").write_text(f'artifact_region = "{REGION}"\n')
    seeding = init_home(load_settings(home=home))
    start = datetime.now(UTC) - timedelta(minutes=1)
    try:
        tokens = _seed(seeding, work)
    finally:
        seeding.close()  # a checkpoint covers every record the seeding appended
    until = datetime.now(UTC) + timedelta(minutes=1)
    with ExitStack() as stack:
        platform = Platform(load_settings(home=home))
        stack.callback(platform.close)
        server = stack.enter_context(
            background_server(create_app(Platform(load_settings(home=home))))
        )
        yield World(platform, home, server, tokens, start.isoformat(), until.isoformat())


def _audit(platform: Platform, *where: Any) -> list[AuditRecordRow]:
    with platform.read_session() as session:
        return list(
            session.execute(
                select(AuditRecordRow).where(*where).order_by(AuditRecordRow.seq)
            ).scalars()
        )


def test_the_access_review_shows_bindings_tokens_with_their_last_use_and_who_never_acted(
    world: World,
) -> None:
    access = world.report()["access_control"]
    assert access["status"] == "evidence"
    found = access["evidence"]
    held = {(b["subject"], b["role"], b["project"]) for b in found["bindings"]}
    assert {("ana", "data_scientist", "*"), ("aud", "auditor", "*")} <= held
    owner = world.platform.home_owner()
    assert found["owner"] == owner
    assert ("*", "project_admin") in {
        (b["project"], b["role"]) for b in found["privileged_bindings"] if b["subject"] == owner
    }
    tokens = {t["token_id"]: t for t in found["tokens"]}
    # Reference: ana acted only with her one token, so its last use is her newest record.
    with world.platform.read_session() as session:
        newest = session.execute(
            select(func.max(AuditRecordRow.ts)).where(AuditRecordRow.actor == "ana")
        ).scalar_one()
    ana = tokens[world.token_id("ana")]
    assert (ana["principal"], ana["state"], ana["roles"]) == ("ana", "active", ["data_scientist"])
    assert ana["last_used_at"] == newest and ana["last_used_from"] == "127.0.0.1:1"
    assert tokens[world.token_id("ben")]["last_used_at"] is not None
    omar = tokens[world.token_id("omar")]
    assert omar["last_used_at"] is None and omar["description"] == MARKUP
    assert f"active token {omar['token_id']} (omar) never used" in access["notes"]
    # omar was registered and given tokens, but never made a request that was recorded
    assert "omar" in found["never_seen"] and "ana" not in found["never_seen"]
    seen = {a["actor"] for a in found["actors_seen"]}
    assert {"ana", "ben", "rita", MARKUP} <= seen
    assert found["denials"]["by_action"]["compliance.read"] == 1


def test_change_management_shows_the_approval_the_refusal_and_the_break_glass(
    world: World,
) -> None:
    change = world.report()["change_management"]
    assert change["status"] == "evidence"
    found = change["evidence"]
    (approval,) = found["approvals"]["records"]
    assert (approval["actor"], approval["resource"]) == ("ben", "model:fraud:1")
    assert approval["details"]["via_token"] == world.token_id("ben")
    promoted = [(r["actor"], r["action"]) for r in found["promotions"]["records"]]
    assert ("rita", "model.alias") in promoted
    (refused,) = found["refused_changes"]["records"]
    assert (refused["action"], refused["outcome"]) == ("model.alias", "denied")
    assert "approv" in str(refused["details"])  # the release policy's reason
    glass = [(r["actor"], r["action"]) for r in reversed(found["break_glass"]["records"])]
    assert glass == [("rita", "model.break_glass_request"), ("ben", "model.break_glass")]
    (request,) = found["break_glass_requests"]
    assert (request["ref"], request["status"], request["confirmed_by"]) == (
        "fraud:2",
        "done",
        "ben",
    )
    assert any("break-glass" in n for n in change["notes"])


def test_cryptography_shows_the_key_versions_and_the_rotation(world: World) -> None:
    crypto = world.report()["cryptography"]
    assert crypto["status"] == "evidence"
    found = crypto["evidence"]
    assert (found["provider"], found["encrypt_artifacts"]) == ("local", True)
    keyring = found["keyring"]
    assert keyring["current_version"] == 2
    assert [(v["version"], v["state"]) for v in keyring["versions"]] == [(1, "live"), (2, "live")]
    (rotation,) = found["rotations"]["records"]
    assert rotation["details"]["version"] == 2
    assert found["last_rotation_at"] == rotation["ts"]
    assert found["shredded_versions"] == [] and found["shredding"]["total"] == 0


def test_logging_shows_the_verified_chain_its_checkpoint_and_shipping_as_a_gap(
    world: World,
) -> None:
    logging = world.report()["logging_monitoring"]
    found = logging["evidence"]
    assert found["audit_chain"]["status"] == "valid", found["audit_chain"]
    with world.platform.read_session() as session:
        records = session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one()
    # the seeding's platform signed a checkpoint over all it appended when it closed
    assert found["last_checkpoint"]["size"] == found["audit_chain"]["records"] == records
    assert found["shipping"] == {"configured": False, "sinks": []}
    assert logging["status"] == "gap"
    assert any("audit shipping is not configured" in g for g in logging["gaps"])


def test_privacy_and_residency_show_the_pii_dataset_the_policy_and_the_refusal(
    world: World,
) -> None:
    controls = world.report()
    privacy = controls["privacy"]
    assert privacy["evidence"]["pii_datasets"] == [
        {
            "dataset": "customers:1",
            "columns": {"email": "pii"},
            "residency": None,
            "created_at": privacy["evidence"]["pii_datasets"][0]["created_at"],
        }
    ]
    assert privacy["evidence"]["retention_rules"]["prediction_log_days"] == 90
    # no retention run and no erasure yet: a gap, not silence
    assert privacy["status"] == "gap" and "no retention run" in privacy["gaps"][0]
    residency = controls["data_residency"]
    assert residency["status"] == "evidence"
    found = residency["evidence"]
    assert found["policy"]["pii"] == ["ae-*"] and found["regions"]["artifacts"] == REGION
    assert found["allowed_here"]["pii"] == {"artifacts": True, "online_store": True}
    (refusal,) = found["refusals"]["records"]
    assert (refusal["actor"], refusal["action"]) == ("ana", "residency.check")
    assert "may not be stored in eu-west-1" in refusal["reason"]


_HASH_ALGS = {"MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512", "SHA3-256", "SHA3-384"}
_HASH_ALGS |= {"SHA3-512", "BLAKE2b-256", "BLAKE2b-384", "BLAKE2b-512", "BLAKE3"}
_TYPES = {"application", "framework", "library", "container", "platform", "operating-system"}
_TYPES |= {"device", "device-driver", "firmware", "file", "machine-learning-model", "data"}


def _check_component(component: dict[str, Any]) -> None:
    """CycloneDX 1.5 ``component``: required type and name; hashes, licenses, properties
    in their schema's shapes."""
    assert component["type"] in _TYPES and isinstance(component["name"], str)
    for item in component.get("hashes", []):
        assert item["alg"] in _HASH_ALGS
        assert re.fullmatch(r"([a-fA-F0-9]{32}|[a-fA-F0-9]{40}|[a-fA-F0-9]{64}|"
                            r"[a-fA-F0-9]{96}|[a-fA-F0-9]{128})", item["content"])  # fmt: skip
    licenses = component.get("licenses", [])
    if any("expression" in item for item in licenses):
        assert len(licenses) == 1 and isinstance(licenses[0]["expression"], str)
    else:
        for item in licenses:
            assert set(item) == {"license"} and ({"id", "name"} & set(item["license"]))
    for prop in component.get("properties", []):
        assert set(prop) == {"name", "value"} and isinstance(prop["value"], str)


def test_the_sbom_is_cyclonedx_1_5_of_this_environment_with_numpy_and_its_purl() -> None:
    sbom = environment_sbom(datetime.now(UTC))
    # the required fields of bom-1.5.schema.json and the formats it gives them
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    assert re.fullmatch(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        sbom["serialNumber"],
    )
    assert isinstance(sbom["version"], int) and sbom["version"] >= 1
    datetime.fromisoformat(sbom["metadata"]["timestamp"])
    _check_component(sbom["metadata"]["component"])
    for tool in sbom["metadata"]["tools"]["components"]:
        _check_component(tool)
    for component in sbom["components"]:
        _check_component(component)
    refs = [c["bom-ref"] for c in (sbom["metadata"]["component"], *sbom["components"])]
    assert len(refs) == len(set(refs)), "bom-ref must be unique"
    for dependency in sbom["dependencies"]:
        assert dependency["ref"] in refs and set(dependency["dependsOn"]) <= set(refs)
    version = importlib.metadata.version("numpy")
    (numpy,) = [c for c in sbom["components"] if c["name"].lower() == "numpy"]
    assert (numpy["version"], numpy["purl"]) == (version, f"pkg:pypi/numpy@{version}")
    assert numpy["licenses"] and {p["name"] for p in numpy["properties"]} == {
        "ghaf:record:sha256",
        "ghaf:record:files",
    }
    # a dependency edge from what is installed: pandas requires numpy
    pandas = next(d for d in sbom["dependencies"] if d["ref"].startswith("pkg:pypi/pandas@"))
    assert f"pkg:pypi/numpy@{version}" in pandas["dependsOn"]


def _stable(document: dict[str, Any]) -> dict[str, Any]:
    """The document without what differs between two generations of the same report."""
    document = {**document, "generated_at": None}
    for control in document["controls"]:
        sbom = control["evidence"].get("sbom")
        if sbom is not None:
            sbom["serialNumber"] = sbom["metadata"]["timestamp"] = None
            control["evidence"]["sbom_summary"]["serial_number"] = None
    return document


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two documents differ, as paths (for the assertion's message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(set(a) | set(b))
            for d in _differences(a.get(k), b.get(k), f"{path}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_cli_and_http_give_the_same_report_html_escapes_and_only_auditors_read_it(
    world: World, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    args = ["--home", str(world.home), "compliance", "report"]
    window = ["--since", world.since, "--until", world.until]
    ran = CliRunner().invoke(app, [*args, *window, "--html", str(page), "-o", "json"])
    assert ran.exit_code == 0, ran.output
    import orjson

    from_cli = orjson.loads(ran.stdout)
    params = {"since": world.since, "until": world.until}
    with httpx.Client(base_url=f"{world.server}/api/v1", timeout=60) as http:

        def get(name: str) -> httpx.Response:
            headers = {"Authorization": f"Bearer {world.tokens[name]}"}
            return http.get("/compliance/report", params=params, headers=headers)

        as_owner = get("root")  # the same person as the CLI's OS account
        assert as_owner.status_code == 200, as_owner.text
        assert not _differences(_stable(as_owner.json()), _stable(from_cli))
        assert get("aud").status_code == 200
        denied = get("dan")
        assert denied.status_code == 403, denied.text
        assert "compliance.read" in denied.json()["detail"]
    refusals = _audit(
        world.platform, AuditRecordRow.action == "compliance.read", AuditRecordRow.actor == "dan"
    )
    assert [r.outcome for r in refusals] == ["denied"]
    # reading is not a write: an allowed report leaves no record, as audit reads do
    assert not _audit(
        world.platform,
        AuditRecordRow.action == "compliance.read",
        AuditRecordRow.outcome == "allowed",
    )
    summary = from_cli["summary"]
    assert summary["controls"] == 7 and set(summary["gaps"]) == {"logging_monitoring", "privacy"}

    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", text), "external asset"
    assert "numpy" in text and "A.8.24" in text


def test_a_bad_window_is_refused_naming_the_option(world: World) -> None:
    """(``ghaf``'s entry point turns these into one line and exit code 3.)"""
    args = ["--home", str(world.home), "compliance", "report", "-o", "json"]
    ran = CliRunner().invoke(app, [*args, "--since", "last tuesday"])
    assert isinstance(ran.exception, InvalidInputError)
    assert "--since 'last tuesday'" in ran.exception.headline and "7d" in str(ran.exception.hint)
    later = datetime.now(UTC) + timedelta(days=1)
    ran = CliRunner().invoke(app, [*args, "--since", later.isoformat(), "--until", "1d"])
    assert isinstance(ran.exception, InvalidInputError)
    assert "after --until" in ran.exception.headline and not ran.stdout
