"""The SDK a data scientist uses, in both modes: ``ghaf.connect()`` on a home and
``ghaf.connect(url, token=...)`` on a server answer the same flows with the same
documents and refuse with the same errors.

Not here, and why: four-eyes approval needs a second proven person, and embedded mode is
one OS account (a second person acts with a token of their own, which is remote mode's
test, ``tests/unit/server/test_remote_models.py``); so the suite checks the refusal both
modes share (approving one's own version) and no approval that succeeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import ghaf
from ghaf.client import Client
from ghaf.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolationError,
)
from ghaf.platform import Platform
from ghaf.registry import get_model_version
from ghaf.tracking.service import get_metric_history
from tests.contract.modes import (
    MODES,
    PROJECT,
    Inputs,
    Mode,
    fresh_home,
    make_inputs,
    normalise,
    open_mode,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, platform: Platform, tmp_path: Path) -> Iterator[Mode]:
    with open_mode(request.param, platform, tmp_path / "mode") as opened:
        yield opened


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    return make_inputs(tmp_path / "inputs")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sdk_flow(client: Client, inputs: Inputs, out: Path) -> dict[str, Any]:
    """What a data scientist does in a day, through the SDK; every answer, in order."""
    seen: dict[str, Any] = {}
    run = client.start_run("churn", project=PROJECT, tags={"team": "risk"})
    run.log_params({"lr": 0.1, "depth": 3})
    for step, loss in enumerate((0.9, 0.5, 0.25)):
        run.log_metric("loss", loss, step=step)
    run.log_metric("auc", 0.91)
    seen["artifacts"] = run.log_artifact(inputs.contract, "config")
    run.end()
    low = client.start_run("churn", project=PROJECT)
    low.log_metric("loss", 0.7)
    low.end()
    seen["run"] = client.get_run(run.run_id)
    seen["search"] = client.search_runs("metrics.loss < 0.5 and params.depth = '3'")
    seen["search_all"] = [r["metrics"] for r in client.search_runs("metrics.loss > 0")]
    seen["registered"] = client.register_model(
        "churn", inputs.model, project=PROJECT, description="contract", run_id=run.run_id
    )
    seen["models"] = client.models()
    seen["alias"] = client.set_alias("churn", "candidate", 1)
    seen["version"] = client.model_version("churn@candidate")
    target = client.download_model("churn:1", out / "downloaded")
    seen["downloaded"] = sorted(
        (str(p.relative_to(target)), _sha256(p)) for p in target.rglob("*") if p.is_file()
    )
    seen["ingested"] = client.ingest(inputs.csv, "tx", project=PROJECT, contract=inputs.contract)
    seen["ingested_2"] = client.ingest(inputs.csv_2, "tx", project=PROJECT)
    seen["datasets"] = client.datasets()
    seen["versions"] = client.dataset_versions("tx")
    seen["valid"] = client.validate_dataset("tx:1", inputs.contract)
    seen["invalid"] = client.validate_dataset("tx:1", inputs.strict)
    seen["diff"] = client.diff_datasets("tx:1", "tx:2")
    run_2 = client.start_run("churn", project=PROJECT)
    run_2.log_input("dataset:tx:2")
    run_2.end()
    seen["lineage"] = client.lineage("dataset:tx:2")
    return seen


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Mode, Any]]]:
    """Each mode's day, run once on a fresh home of its own and kept open for the
    assertions: both tests read the same days, so the suite pays for one day per mode."""
    root = tmp_path_factory.mktemp("sdk-modes")
    inputs = make_inputs(root / "inputs")
    with contextlib.ExitStack() as stack:
        found: dict[str, tuple[Mode, Any]] = {}
        for name in MODES:
            home = stack.enter_context(fresh_home(root / f"{name}-home"))
            mode = stack.enter_context(open_mode(name, home, root / name))
            with mode.client() as client:
                assert client.whoami()["name"] == mode.user
                found[name] = (mode, (inputs, sdk_flow(client, inputs, root / f"{name}-out")))
        yield found


@pytest.mark.parametrize("name", MODES)
def test_a_data_scientist_s_day_through_the_sdk(
    name: str, days: dict[str, tuple[Mode, Any]]
) -> None:
    mode, (inputs, seen) = days[name]
    run = seen["run"]
    assert (run["status"], run["user"], run["project"]) == ("finished", mode.user, PROJECT)
    assert run["params"] == {"lr": "0.1", "depth": "3"} and run["tags"]["team"] == "risk"
    assert run["metrics"] == {"loss": 0.25, "auc": 0.91}
    assert seen["artifacts"] == ["config/tx.yaml"]
    assert [r["run_id"] for r in seen["search"]] == [run["run_id"]]
    assert sorted(m["loss"] for m in seen["search_all"]) == [0.25, 0.7]
    stored = get_metric_history(mode.platform, run["run_id"], "loss")
    assert [(p.step, p.value) for p in stored] == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert seen["models"] == [{"name": "churn", "latest": 1, "project": PROJECT}]
    assert seen["registered"]["created_by"] == mode.user and seen["registered"]["signed"]
    assert seen["alias"]["aliases"] == ["candidate"] and seen["version"]["version"] == 1
    version = get_model_version(mode.platform, "churn:1")
    assert dict(seen["downloaded"]) == {p: f["digest"] for p, f in version.files.items()}
    originals = {str(p.relative_to(inputs.model)): _sha256(p) for p in inputs.model.rglob("*")}
    assert originals.items() <= dict(seen["downloaded"]).items()  # + the signed release
    assert (seen["ingested"]["ref"], seen["ingested"]["rows"]) == ("tx:1", 3)
    assert seen["ingested"]["validation"]["ok"] is True
    assert seen["datasets"] == [{"name": "tx", "latest": 2, "project": PROJECT}]
    assert [v["ref"] for v in seen["versions"]] == ["tx:1", "tx:2"]
    assert seen["valid"]["ok"] is True and seen["invalid"]["ok"] is False
    assert seen["diff"]["removed"] == ["email"] and seen["diff"]["rows"] == [3, 2]
    assert seen["lineage"]["node"] == "dataset:tx:2"
    assert any("run:" in str(node) for node in seen["lineage"]["downstream"])


def test_the_sdk_answers_the_same_in_both_modes(days: dict[str, tuple[Mode, Any]]) -> None:
    answers = {name: normalise(seen, user=mode.user) for name, (mode, (_, seen)) in days.items()}
    assert answers["embedded"] == answers["remote"]


def test_errors_are_the_same_in_both_modes(mode: Mode, inputs: Inputs) -> None:
    with mode.client() as client:
        with pytest.raises(NotFoundError, match="model 'nope' is not registered") as missing:
            client.model_version("nope")
        assert type(missing.value) is NotFoundError  # the problem type, not just a 404
        assert missing.value.hint == "ghaf models list"
        with pytest.raises(NotFoundError, match=r"run 0{32} does not exist"):
            client.get_run("0" * 32)
        with pytest.raises(InvalidInputError, match=r"metrics\.loss <") as bad:
            client.search_runs("metrics.loss <")
        assert bad.value.hint
        with pytest.raises(NotFoundError, match="dataset 'nope'"):
            client.dataset_versions("nope")
        client.register_model("churn", inputs.model, project=PROJECT)
        with pytest.raises(
            PolicyViolationError, match=f"{mode.user} is the author of churn:1 and cannot approve"
        ) as refused:
            client.approve_model_version("churn:1")  # four eyes: not by its author
        assert refused.value.hint and "four eyes" in refused.value.hint


def test_a_server_never_takes_the_local_principal_from_a_request(
    platform: Platform, tmp_path: Path
) -> None:
    """Only the in-process transport can name the home's owner: a real server refuses
    every header, query or body that tries to claim it (401, no credential)."""
    with open_mode("remote", platform, tmp_path / "mode") as mode:
        owner = platform.admin().name
        claims: list[dict[str, str]] = [
            {"ghaf.local_principal": owner},
            {"x-ghaf-local-principal": owner},
            {"ghaf-local-principal": owner},
            {"x-forwarded-user": owner, "x-remote-user": owner, "remote-user": owner},
            {"authorization": f"Local {owner}"},
            {"authorization": "Bearer home-owner"},
            {"authorization": f"Bearer uid:{platform.admin().credential.id}"},  # type: ignore[union-attr]
        ]
        with httpx.Client(base_url=mode.url + "/api/v1", timeout=30) as http:
            for headers in claims:
                answer = http.get("/whoami", headers=headers)
                assert answer.status_code == 401, (headers, answer.text)
            answer = http.get("/whoami", params={"ghaf.local_principal": owner})
            assert answer.status_code == 401
            answer = http.post(
                "/runs",
                json={"experiment": "x", "project": PROJECT, "ghaf.local_principal": owner},
            )
            assert answer.status_code == 401
            # The token's user stays the token's user, whatever else the request says.
            me = http.get(
                "/whoami",
                headers={"authorization": f"Bearer {mode.token}", "x-ghaf-local-principal": owner},
            )
            assert me.status_code == 200 and me.json()["name"] == mode.user


def test_embedded_acts_as_the_home_owner_or_as_a_token_s_person(
    platform: Platform, tmp_path: Path
) -> None:
    with open_mode("remote", platform, tmp_path / "mode") as remote:
        with ghaf.connect(home=platform.settings.home) as owner:
            assert owner.whoami()["credential"].startswith("home-owner")
        with ghaf.connect(home=platform.settings.home, token=remote.token) as alice:
            assert alice.whoami()["name"] == remote.user
            with pytest.raises(PermissionDeniedError, match=remote.user):
                alice.start_run("x", project="default")


def test_the_embedded_sdk_prints_nothing(
    platform: Platform, capfd: pytest.CaptureFixture[str]
) -> None:
    """A script's output is its own: the in-process app writes no access log lines."""
    with ghaf.connect(home=platform.settings.home) as client:
        client.whoami()
        with pytest.raises(NotFoundError):
            client.model_version("nope")
    captured = capfd.readouterr()
    assert captured.out == "" and "request" not in captured.err


def test_a_script_that_never_closes_its_embedded_client_still_exits(platform: Platform) -> None:
    code = (
        "import sys, ghaf\n"
        "client = ghaf.connect(home=sys.argv[1])\n"
        "print(client.whoami()['name'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(platform.settings.home)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout.strip()) == (0, platform.admin().name), done.stderr
