"""One verification path: every door that loads a model refuses one no trusted key signed.

The attacker here can write to the metadata database and the artifact store (a database
administrator, a stolen backup restored over the live one): they point a registered
version at other bytes whose digest is consistent. Only the signature catches it, and
serving, batch scoring, the gate and ``ghaf.load_model`` must all say which file.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ghaf.errors import IntegrityError
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import register_model
from ghaf.registry.default import load_model

POLICY = "name: ci\nrequire:\n  signature: true\n"


def _database(platform: Platform) -> sqlite3.Connection:
    return sqlite3.connect(platform.settings.home / "ghaf.db")


@pytest.fixture
def registered(platform: Platform, trained: Any, tmp_path: Path) -> Any:
    save_model(trained.model, tmp_path / "saved")
    return register_model(platform, platform.admin(), "fraud", tmp_path / "saved")


@pytest.fixture
def swapped(platform: Platform, registered: Any, trained: Any, tmp_path: Path) -> Any:
    """Version 1's model.skops now names another model's bytes (stored, digest-consistent)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    evil = HistGradientBoostingClassifier(max_iter=2).fit(trained.X, 1 - trained.y)
    save_model(evil, tmp_path / "evil")
    info = platform.artifacts.put(tmp_path / "evil" / "model.skops")
    files = dict(registered.files)
    files["model.skops"] = {"digest": info.digest, "size": info.size}
    with _database(platform) as db:
        db.execute("UPDATE model_versions SET files = ? WHERE version = 1", (json.dumps(files),))
    return registered


def _ghaf(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(platform.settings.home), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _input(tmp_path: Path, trained: Any) -> Path:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({f"f{i}": trained.X[:20, i] for i in range(8)}), source)
    return source


def test_ghaf_serve_refuses_a_changed_file_in_a_signed_directory(
    platform: Platform, hgb_spec: Any
) -> None:
    model_file = hgb_spec.path / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    done = _ghaf(platform, "serve", str(hgb_spec.path), "--flavor", "skops", "--port", "0")
    assert done.returncode == 8, done.stderr
    assert "Hash mismatch" in done.stderr and "model.skops" in done.stderr


def test_ghaf_predict_refuses_a_swapped_file_and_writes_nothing(
    platform: Platform, swapped: Any, trained: Any, tmp_path: Path
) -> None:
    out = tmp_path / "scored.parquet"
    done = _ghaf(platform, "predict", "fraud:1", str(_input(tmp_path, trained)), str(out))
    assert done.returncode == 8, done.stderr
    assert "Hash mismatch" in done.stderr and "model.skops" in done.stderr
    assert not out.exists()


def test_ghaf_gate_check_refuses_a_swapped_file(
    platform: Platform, swapped: Any, tmp_path: Path
) -> None:
    policy = tmp_path / "ci.yaml"
    policy.write_text(POLICY)
    done = _ghaf(platform, "gate", "check", "fraud:1", "--policy", str(policy))
    assert done.returncode == 8, done.stderr
    assert "model.skops" in done.stderr


def test_load_model_refuses_a_swapped_file(platform: Platform, swapped: Any) -> None:
    with pytest.raises(IntegrityError, match=r"Hash mismatch for \\?'model\.skops"):
        load_model("fraud:1", platform)


def test_a_version_recorded_as_unsigned_is_refused_by_every_loader(
    platform: Platform, registered: Any, trained: Any, tmp_path: Path
) -> None:
    with _database(platform) as db:
        db.execute("UPDATE model_versions SET signed = 0 WHERE version = 1")
    with pytest.raises(IntegrityError, match="registered without a signature"):
        load_model("fraud:1", platform)
    out = tmp_path / "scored.parquet"
    done = _ghaf(platform, "predict", "fraud:1", str(_input(tmp_path, trained)), str(out))
    assert done.returncode == 8 and "registered without a signature" in done.stderr
    assert not out.exists()


def test_an_intact_version_loads_through_the_same_path(
    platform: Platform, registered: Any, trained: Any
) -> None:
    model = load_model("fraud:1", platform)
    assert model.predict_proba(trained.X[:3]).shape == (3, 2)


@pytest.mark.parametrize("command", ["serve", "predict"])
def test_an_unsigned_model_directory_is_refused_with_the_way_to_serve_it(
    platform: Platform, model_store: Path, trained: Any, tmp_path: Path, command: str
) -> None:
    unsigned = model_store / "hgb"  # a skops file, never signed
    args = [command, str(unsigned), "--flavor", "skops"]
    if command == "predict":
        args[2:2] = [str(_input(tmp_path, trained)), str(tmp_path / "out.parquet")]
    done = _ghaf(platform, *args)
    assert done.returncode == 8, done.stderr
    assert "is not signed (no model.sig)" in done.stderr
    assert "ghaf models register" in done.stderr
    assert not (tmp_path / "out.parquet").exists()


def test_a_directory_signed_by_a_stranger_is_refused(
    platform: Platform, hgb_spec: Any, trained: Any, tmp_path: Path
) -> None:
    from ghaf.home import init_home
    from ghaf.security.signing import sign_model_dir
    from ghaf.settings import load_settings

    with init_home(load_settings(home=tmp_path / "stranger")) as stranger:
        sign_model_dir(stranger.settings, hgb_spec.path)
    out = tmp_path / "out.parquet"
    source = _input(tmp_path, trained)
    args = ["predict", str(hgb_spec.path), str(source), str(out), "--flavor", "skops"]
    done = _ghaf(platform, *args)
    assert done.returncode == 8, done.stderr
    assert "failed signature verification" in done.stderr
    assert not out.exists()
