"""Model and data bytes never touch the system's temporary directory (issue 17, item 5).

Encryption at rest covers the home; ``/tmp`` is outside it. Every door that fetches,
decrypts, stages or re-saves a model or a dataset works in the home's scratch space
(``<home>/tmp``), and leaves nothing there. Here the system temporary directory is a
path that does not exist, so a door that reaches for it fails and is named.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

import ghaf
from ghaf.artifacts.scratch import read_owner
from ghaf.cli.main import app
from ghaf.data import write_dataset
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import (
    approve_model_version,
    download_model,
    get_model_version,
    register_model,
    transition_model_version,
)
from ghaf.registry.gate_policies import add_gate_policy
from ghaf.tracking import start_run
from tests.unit.registry.conftest import X, Y
from tests.unit.serving.server_processes import second_person

POLICY = "name: ci\nrequire:\n  signature: true\n"


def _cli(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    if result.exit_code != 0:
        raise AssertionError(f"exit {result.exit_code}: {result.output} {result.exception!r}")


@pytest.fixture
def fraud(platform: Platform, tmp_path: Path) -> str:
    """fraud:1 in staging, approved by a second person, with a gate attached to the model."""
    from sklearn.linear_model import LogisticRegression

    save_model(LogisticRegression().fit(X, Y), tmp_path / "model")
    register_model(platform, platform.admin(), "fraud", tmp_path / "model")
    transition_model_version(platform, platform.admin(), "fraud:1", "staging")
    approve_model_version(platform, second_person(platform), "fraud:1")
    add_gate_policy(platform, platform.admin(), POLICY, model="fraud")
    return "fraud:1"


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The system temporary directory, pointed at a path that does not exist."""
    gone = tmp_path / "system-tmp"
    monkeypatch.setenv("TMPDIR", str(gone))
    monkeypatch.setattr(tempfile, "tempdir", str(gone))
    yield gone


def test_no_door_writes_model_or_data_bytes_outside_the_home(
    platform: Platform, fraud: str, system_tmp: Path, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression().fit(X, Y)
    model_dir = tmp_path / "model"  # saved by the fixture, before the system tmp went
    policy = tmp_path / "ci.yaml"
    policy.write_text(POLICY)
    features = tmp_path / "in.parquet"
    pq.write_table(pa.table({f"f{i}": X[:5, i] for i in range(X.shape[1])}), features)
    mlflow_dir = tmp_path / "mlflow"
    mlflow_dir.mkdir()
    (mlflow_dir / "MLmodel").write_text(yaml.safe_dump({"flavors": {"sklearn": {}}}))
    (mlflow_dir / "model.pkl").write_bytes(pickle.dumps(fitted))
    rows = tmp_path / "tx.csv"
    rows.write_text("id,amount\n1,10.5\n2,20.0\n")

    def log_and_register() -> None:
        with start_run("train", platform=platform, experiment="fraud") as run:
            source = run.log_model(fitted, "model")
        _cli("models", "register", "fraud", source)

    doors: dict[str, Callable[[], object]] = {
        "ghaf models register": lambda: _cli("models", "register", "fraud", str(model_dir)),
        "run.log_model, then register run:": log_and_register,
        "ghaf models import-mlflow": lambda: _cli(
            "models", "import-mlflow", str(mlflow_dir), "--name", "imported"
        ),
        "ghaf.load_model": lambda: ghaf.load_model(fraud, platform),
        "download_model": lambda: download_model(platform, fraud, tmp_path / "downloaded"),
        "ghaf verify": lambda: _cli("verify", fraud),
        "ghaf gate check": lambda: _cli("gate", "check", fraud, "--policy", str(policy)),
        "promotion through an attached gate": lambda: _cli(
            "models", "promote", fraud, "production"
        ),
        "ghaf predict to a file": lambda: _cli(
            "predict", fraud, str(features), str(tmp_path / "scores.parquet")
        ),
        "ghaf predict to a dataset": lambda: _cli(
            "predict", fraud, str(features), "dataset:scores"
        ),
        "ghaf data ingest": lambda: _cli("data", "ingest", str(rows), "--name", "tx"),
    }
    failed = {}
    for door, call in doors.items():
        try:
            call()
        except Exception as exc:
            failed[door] = repr(exc)
    assert failed == {}, "\n".join(f"{door}: {error}" for door, error in failed.items())
    assert not system_tmp.exists()
    assert os.listdir(platform.settings.home / "tmp") == []
    # Each door did its work.
    assert get_model_version(platform, "fraud:3").source.startswith("run:")
    assert get_model_version(platform, "imported:1").flavor == "skops"
    assert get_model_version(platform, fraud).stage == "production"
    assert pq.read_table(tmp_path / "scores.parquet").num_rows == 5


def test_a_dataset_write_stages_in_a_scratch_directory_marked_with_its_process(
    platform: Platform,
) -> None:
    scratch = platform.settings.home / "tmp"
    seen = []

    def batches() -> Iterator[pa.RecordBatch]:
        # Runs while the write is staging: its directory exists now.
        seen.extend(read_owner(d) for d in scratch.glob("stage-*"))
        yield pa.record_batch({"id": [1, 2, 3]})

    version = write_dataset(platform, platform.admin(), "ids", batches(), source="test")
    assert version.num_rows == 3
    (owner,) = seen
    assert owner is not None and (owner.pid, owner.purpose) == (os.getpid(), "stage")
    assert list(scratch.glob("stage-*")) == []
