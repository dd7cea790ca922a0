"""Loading a model never runs code it should not (issue 17, finding 1), at every door.

Each payload would create a sentinel file if it ran; every test asserts the specific
refusal and that the sentinel does not exist. The doors: registration through the CLI,
``ghaf.load_model``, ``ghaf gate check`` and ``ghaf serve``. For the doors after
registration the version is planted the way an attacker who can write the metadata
database and the artifact store (and holds the home's key, or a version stored before
registration inspected models) would: real files, signed for that very version, the
registry row pointed at them. Registration itself is the first door, and refuses them.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import ghaf
from ghaf.cli.main import app
from ghaf.errors import PolicyViolationError
from ghaf.models import save_model
from ghaf.platform import Platform
from ghaf.registry import approve_model_version, list_models, register_model
from ghaf.registry.files import release_digests, seal_dir, upload_dir
from ghaf.security.release_manifest import Release
from tests.unit.registry.conftest import X, Y
from tests.unit.serving.server_processes import second_person

SERVE = ("serve", "evil:1", "--port", "0")
GATE = "name: ci\nrequire:\n  signature: true\n  clean_scan: true\n"


class _Touch:
    """A pickle that runs ``touch PATH`` when unpickled by a careless loader."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def _meta(directory: Path, flavor: str, files: list[str], options: dict[str, Any]) -> None:
    body = {"flavor": flavor, "files": files, "options": options}
    (directory / "ghaf-model.json").write_text(json.dumps(body))


def _pyfunc_entry_point(directory: Path, sentinel: Path) -> str:
    directory.mkdir(parents=True)
    (directory / "payload.pkl").write_bytes(pickle.dumps(f"touch {sentinel}"))  # plain data
    _meta(directory, "pyfunc", ["payload.pkl"], {"entry_point": "os:system"})
    return "ghaf-model.json names code to import (entry_point = 'os:system')"


def _pytorch_entry_kwargs(directory: Path, sentinel: Path) -> str:
    import safetensors.torch
    import torch

    directory.mkdir(parents=True)
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(directory / "model.safetensors"))
    options = {"entry_point": "subprocess:run", "entry_kwargs": {"args": ["touch", str(sentinel)]}}
    _meta(directory, "pytorch", ["model.safetensors"], options)
    return "ghaf-model.json names code to import (entry_kwargs = {'args': ['touch'"


def _pickle_named_skops(directory: Path, sentinel: Path) -> str:
    directory.mkdir(parents=True)
    (directory / "model.skops").write_bytes(pickle.dumps(_Touch(sentinel), protocol=4))
    _meta(directory, "skops", ["model.skops"], {})
    return "model.skops is a pickle (protocol 4): loading it runs code, not a skops archive"


PAYLOADS: dict[str, Callable[[Path, Path], str]] = {
    "pyfunc entry_point os:system": _pyfunc_entry_point,
    "pytorch entry_kwargs reaching subprocess.run": _pytorch_entry_kwargs,
    "pickle renamed model.skops": _pickle_named_skops,
}


def _stored(platform: Platform) -> set[str]:
    """Every content blob in the artifact store (audit checkpoint copies left out)."""
    root = platform.settings.home / "artifacts"
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    return {p for p in found if not p.startswith("audit/")}


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    exc = result.exception
    text = result.output + (exc.headline if isinstance(exc, ghaf.errors.GhafError) else "")
    code = result.exit_code
    if isinstance(exc, ghaf.errors.GhafError):
        from ghaf.cli.exit_codes import exit_code_for

        code = exit_code_for(exc)
    return code, " ".join(text.split())


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_registration_through_the_cli_refuses_it_and_stores_nothing(
    platform: Platform, tmp_path: Path, payload: str
) -> None:
    sentinel = tmp_path / "pwned"
    expected = PAYLOADS[payload](tmp_path / "evil", sentinel)
    before = _stored(platform)
    code, out = _cli("models", "register", "evil", str(tmp_path / "evil"))
    assert code == 7, out
    assert expected in out
    assert not sentinel.exists()
    assert _stored(platform) == before
    assert [m for m in list_models(platform) if m[0] == "evil"] == []


def test_a_pickle_registered_as_a_single_skops_file_is_refused(
    platform: Platform, tmp_path: Path
) -> None:
    sentinel = tmp_path / "pwned"
    source = tmp_path / "model.skops"
    source.write_bytes(pickle.dumps(_Touch(sentinel), protocol=4))
    before = _stored(platform)
    code, out = _cli("models", "register", "evil", str(source))
    assert code == 7, out
    assert "model.skops is a pickle (protocol 4): loading it runs code, not a skops archive" in out
    assert not sentinel.exists() and _stored(platform) == before


def _plant(platform: Platform, tmp_path: Path, build: Callable[[Path, Path], str]) -> Path:
    """``evil:1``: approved, then its row pointed at ``build``'s files, signed for evil:1."""
    from sklearn.linear_model import LogisticRegression

    sentinel = tmp_path / "pwned"
    save_model(LogisticRegression().fit(X, Y), tmp_path / "benign")
    version = register_model(platform, platform.admin(), "evil", tmp_path / "benign")
    approve_model_version(platform, second_person(platform), version.ref)
    evil = tmp_path / "evil"
    build(evil, sentinel)
    files = upload_dir(platform, evil)
    release = Release("evil", 1, version.project, release_digests(files))
    files |= seal_dir(platform, evil, release)
    flavor = json.loads((evil / "ghaf-model.json").read_text())["flavor"]
    with sqlite3.connect(platform.settings.home / "ghaf.db") as db:
        db.execute(
            "UPDATE model_versions SET files = ?, flavor = ? WHERE version = 1 AND model_id = "
            "(SELECT id FROM registered_models WHERE name = 'evil')",
            (json.dumps(files), flavor),
        )
    return sentinel


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_planted_version_never_runs_at_load_gate_or_serve(
    platform: Platform, tmp_path: Path, payload: str
) -> None:
    expected = PAYLOADS[payload](tmp_path / "probe", tmp_path / "pwned")
    sentinel = _plant(platform, tmp_path, PAYLOADS[payload])

    with pytest.raises(PolicyViolationError) as refused:
        ghaf.load_model("evil:1", platform)
    assert expected in " ".join(refused.value.headline.split())
    assert not sentinel.exists()

    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    code, out = _cli("gate", "check", "evil:1", "--policy", str(gate), "--output", "json")
    assert code == 7, out
    report = json.loads(out[out.index("{") : out.rindex("}") + 1])
    scan = next(r for r in report["rules"] if r["rule"] == "clean scan")
    assert scan["passed"] is False and expected in " ".join(scan["reason"].split())
    assert next(r for r in report["rules"] if r["rule"] == "signature")["passed"] is True
    assert not sentinel.exists()

    served = subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(platform.settings.home), *SERVE],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert served.returncode == 7, served.stdout + served.stderr
    assert expected in " ".join(served.stderr.split())
    assert "Traceback" not in served.stderr
    assert not sentinel.exists()


LINKS: dict[str, Callable[[Path, Path], tuple[Path, str]]] = {}


def _link(kind: str) -> Callable[[Callable[[Path, Path], tuple[Path, str]]], Any]:
    def add(fn: Callable[[Path, Path], tuple[Path, str]]) -> Any:
        LINKS[kind] = fn
        return fn

    return add


@_link("symlink to /etc/passwd")
def _symlink_file(model: Path, tmp: Path) -> tuple[Path, str]:
    (model / "notes.txt").symlink_to("/etc/passwd")
    return model, "notes.txt is a symbolic link"


@_link("symlinked directory")
def _symlink_dir(model: Path, tmp: Path) -> tuple[Path, str]:
    (tmp / "outside").mkdir()
    (tmp / "outside" / "secret.txt").write_text("secret")
    (model / "extra").symlink_to(tmp / "outside")
    return model, "extra is a symbolic link"


@_link("FIFO")
def _fifo(model: Path, tmp: Path) -> tuple[Path, str]:
    os.mkfifo(model / "pipe")
    return model, "pipe is a FIFO (named pipe)"


@_link("hard link to a file outside")
def _hard_link(model: Path, tmp: Path) -> tuple[Path, str]:
    (tmp / "secret.txt").write_text("secret")
    os.link(tmp / "secret.txt", model / "secret.txt")
    return model, "secret.txt is hard-linked (2 names share its content)"


@_link("single file that is a symlink")
def _single_symlink(model: Path, tmp: Path) -> tuple[Path, str]:
    (tmp / "model.skops").symlink_to(model / "model.skops")
    return tmp / "model.skops", "model.skops is a symbolic link"


@_link("single file that is a FIFO")
def _single_fifo(model: Path, tmp: Path) -> tuple[Path, str]:
    os.mkfifo(tmp / "model.onnx")
    return tmp / "model.onnx", "model.onnx is a FIFO (named pipe)"


@pytest.mark.parametrize("kind", sorted(LINKS))
def test_registration_refuses_links_and_special_files_naming_the_path(
    platform: Platform, model_dir: Path, tmp_path: Path, kind: str
) -> None:
    source, expected = LINKS[kind](model_dir, tmp_path)
    before = _stored(platform)
    code, out = _cli("models", "register", "linked", str(source))
    assert code == 7, out
    assert expected in out
    assert _stored(platform) == before
    assert [m for m in list_models(platform) if m[0] == "linked"] == []


def test_an_intact_model_directory_still_registers_and_loads(
    platform: Platform, model_dir: Path
) -> None:
    code, out = _cli("models", "register", "fine", str(model_dir))
    assert code == 0, out
    predicted = ghaf.load_model("fine:1", platform).predict(X)
    assert predicted.shape == (len(X),) and set(np.unique(predicted)) <= {0, 1}


def _evil_pt2(directory: Path, sentinel: Path) -> Path:
    """A real ``torch.export`` archive whose first weight is marked pickled, and is a payload
    (``torch.export.load`` unpickles such weights with ``weights_only=False``)."""
    import zipfile

    import torch

    from ghaf.serving.runtimes.torch import save_torch

    real = save_torch(torch.nn.Sequential(torch.nn.Linear(3, 2)), 3, directory / "real.pt2")
    evil = directory / "model.pt2"
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(evil, "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("model_weights_config.json"):
                config = json.loads(data)
                next(iter(config["config"].values()))["use_pickle"] = True
                data = json.dumps(config).encode()
            elif info.filename.endswith("weights/weight_0"):
                data = pickle.dumps(_Touch(sentinel), protocol=2)
            out.writestr(info, data)
    real.unlink()
    return evil


def test_a_pt2_archive_that_unpickles_code_is_refused_at_registration_and_serve(
    platform: Platform, tmp_path: Path
) -> None:
    import torch

    from ghaf.security.signing import sign_model_dir

    sentinel = tmp_path / "pwned"
    model = tmp_path / "torch"
    save_model(torch.nn.Sequential(torch.nn.Linear(3, 2)), model, flavor="pytorch")
    _evil_pt2(model, sentinel)
    expected = "model.pt2!"
    before = _stored(platform)
    code, out = _cli("models", "register", "t", str(model))
    assert code == 7, out
    assert expected in out and "references the global posix.system" in out
    assert _stored(platform) == before and not sentinel.exists()

    sign_model_dir(platform.settings, model)  # signed by a trusted key, and still refused
    served = subprocess.run(
        [
            sys.executable,
            "-m",
            "ghaf",
            "--home",
            str(platform.settings.home),
            "serve",
            str(model),
            "--flavor",
            "pytorch",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert served.returncode == 7, served.stdout + served.stderr
    assert "references the global posix.system" in served.stderr
    assert not sentinel.exists()
