"""The ``ghaf`` command in both modes: on a home (embedded) and with ``GHAF_URL`` and a
token (remote), each command prints the same ``--output json`` document (once ids, times
and the acting person are normalised), exits with the same code and, when it refuses,
says the same first line.

Not here, and why: a four-eyes approval that succeeds needs a second proven person, and
embedded mode is one OS account (a second person acts with their own token, which is
remote mode); the suite checks the refusal both modes share (approving one's own
version). Runs are started through the SDK: the CLI has no command that starts one.
Downloading a model is the SDK's (``client.download_model``): the CLI has no command for
it in either mode.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from ghaf.cli.exit_codes import exit_code_for
from ghaf.errors import InvalidInputError, NotFoundError, PolicyViolationError
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


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each mode's day, run once on a fresh home of its own: (acting user, answers).

    Both tests read the same days (each is about a hundred ``ghaf`` processes), so the
    suite pays for one day per mode, not two."""
    root = tmp_path_factory.mktemp("cli-modes")
    inputs = make_inputs(root / "inputs")
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for name in MODES:
        with fresh_home(root / f"{name}-home") as home, open_mode(name, home, root / name) as mode:
            found[name] = (mode.user, cli_flow(mode, inputs))
    return found


def _first_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[0] if lines else ""


def cli_flow(mode: Mode, inputs: Inputs) -> dict[str, Any]:
    """A data scientist's day with the ``ghaf`` command; every answer as (exit code,
    JSON document or printed line, first line of stderr)."""
    with mode.client() as client:
        run = client.start_run("churn", project=PROJECT, tags={"team": "risk"})
        run.log_params({"lr": 0.1, "depth": 3})
        run.log_metrics({"loss": 0.25, "auc": 0.91})
        run.log_artifact(inputs.contract, "config")
        run.end()
        low = client.start_run("churn", project=PROJECT)
        low.log_metric("loss", 0.7)
        low.end()
        run_id = run.run_id
    seen: dict[str, Any] = {}

    def call(
        key: str, *args: str, json_out: bool = True, flag: tuple[str, ...] = ("--output", "json")
    ) -> None:
        done = mode.ghaf(*args, *(flag if json_out else ()))
        out: Any = done.stdout.strip()
        if json_out and (done.returncode == 0 or out.startswith("{")):
            try:
                out = json.loads(done.stdout)
            except ValueError:
                pytest.fail(f"ghaf {' '.join(args)} --output json printed {done.stdout!r}")
        seen[key] = (done.returncode, out, _first_line(done))

    call("runs", "runs", "list", "--filter", "metrics.loss < 0.5 and params.depth = '3'")
    call("runs_all", "runs", "list", "--order-by", "metrics.loss")
    call("run", "runs", "show", run_id)
    call("register", "models", "register", "churn", str(inputs.model), json_out=False)
    call("models", "models", "list")
    call("alias", "models", "alias", "churn", "candidate", "1", json_out=False)
    call("show", "models", "show", "churn@candidate")
    call("versions_of_model", "models", "show", "churn")
    call(
        "ingest",
        "data",
        "ingest",
        str(inputs.csv),
        "--name",
        "tx",
        "--contract",
        str(inputs.contract),
    )
    call("ingest_2", "data", "ingest", str(inputs.csv_2), "--name", "tx")
    call("datasets", "data", "list")
    call("versions", "data", "versions", "tx")
    call("valid", "data", "validate", "tx:1", "--contract", str(inputs.contract))
    call("invalid", "data", "validate", "tx:1", "--contract", str(inputs.strict))
    call("diff", "data", "diff", "tx:1", "tx:2")
    with mode.client() as client:
        used = client.start_run("churn", project=PROJECT)
        used.log_input("dataset:tx:2")
        used.end()
    call("lineage", "lineage", "show", "dataset:tx:2")
    call("missing_model", "models", "show", "nope:1")
    call("missing_run", "runs", "show", "0" * 32)
    call("bad_filter", "runs", "list", "--filter", "metrics.loss <")
    call("self_approval", "models", "approve", "churn:1", json_out=False)
    return seen


@pytest.mark.parametrize("name", MODES)
def test_a_data_scientist_s_day_with_the_cli(
    name: str, days: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    user, seen = days[name]
    failed = {k: v for k, v in seen.items() if v[0] != 0}
    assert set(failed) == {
        "invalid",
        "missing_model",
        "missing_run",
        "bad_filter",
        "self_approval",
    }, failed
    _, runs, _ = seen["runs"]
    assert [(r["user"], r["metrics"]) for r in runs["runs"]] == [
        (user, {"loss": 0.25, "auc": 0.91})
    ]
    assert [r["metrics"]["loss"] for r in seen["runs_all"][1]["runs"]][:2] == [0.25, 0.7]
    run = seen["run"][1]
    assert run["params"] == {"lr": "0.1", "depth": "3"} and list(run["artifacts"]) == [
        "config/tx.yaml"
    ]
    assert seen["register"][1] == "registered churn:1 (skops, signed)"
    assert seen["models"][1] == {"models": [{"name": "churn", "latest": 1, "project": PROJECT}]}
    assert seen["alias"][1] == "churn@candidate -> churn:1"
    (shown,) = seen["show"][1]["versions"]
    assert (shown["version"], shown["aliases"], shown["created_by"]) == (
        1,
        ["candidate"],
        user,
    )
    assert (seen["ingest"][1]["ref"], seen["ingest"][1]["rows"]) == ("tx:1", 3)
    assert [v["ref"] for v in seen["versions"][1]["versions"]] == ["tx:1", "tx:2"]
    assert seen["valid"][1]["ok"] is True
    assert seen["diff"][1]["removed"] == ["email"]
    assert any(node.startswith("run:") for node in seen["lineage"][1]["downstream"])
    # Refusals: one line and the exit code of the error's kind, in either mode.
    assert seen["missing_model"][0] == exit_code_for(NotFoundError(""))
    assert seen["missing_model"][2].startswith("error: model 'nope' is not registered")
    assert seen["missing_run"][0] == exit_code_for(NotFoundError(""))
    assert seen["bad_filter"][0] == exit_code_for(InvalidInputError(""))
    assert seen["self_approval"][0] == exit_code_for(PolicyViolationError(""))
    assert f"{user} is the author of churn:1" in seen["self_approval"][2]


def test_the_cli_prints_the_same_in_both_modes(
    days: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    answers = {name: normalise(seen, user=user) for name, (user, seen) in days.items()}
    differ = {
        key: (embedded, answers["remote"][key])
        for key, embedded in answers["embedded"].items()
        if embedded != answers["remote"][key]
    }
    assert differ == {}
