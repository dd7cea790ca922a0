"""A version's files: staged from a directory or file, signed, stored, fetched and verified."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ghaf.errors import IntegrityError, InvalidInputError, NotFoundError
from ghaf.models.base import MODEL_FILE, ModelMeta
from ghaf.models.flavors import get_flavor
from ghaf.platform import Platform
from ghaf.security.signing import SIGNATURE_FILE, sign_model_dir, verify_model_dir

_SUFFIX_FLAVORS = {
    ".skops": "skops",
    ".onnx": "onnx",
    ".ubj": "xgboost",
}


def sign_dir(platform: Platform, directory: Path) -> None:
    """Sign ``directory`` with the home's key (every registered version is signed)."""
    sign_model_dir(platform.settings, directory)


def verify_dir(platform: Platform, directory: Path) -> list[str]:
    """Verify the signature over ``directory`` against the trust store; the signed files.

    Raises:
        IntegrityError: any failure, or a file in ``directory`` the signature does not list.
    """
    listed = set(verify_model_dir(platform.settings, directory))
    present = {
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name != SIGNATURE_FILE
    }
    if present - listed:
        raise IntegrityError(
            f"files not covered by the signature: {', '.join(sorted(present - listed))}",
            hint="the model directory was tampered with; re-register it",
        )
    return sorted(listed)


def stage_source(source: Path, workdir: Path) -> Path:
    """Copy a model directory (or wrap a single model file) into ``workdir``."""
    target = workdir / "model"
    if source.is_dir():
        if not (source / MODEL_FILE).is_file():
            raise InvalidInputError(
                f"{source} has no {MODEL_FILE}: it is not a Ghaf model directory",
                hint="save it with ghaf.models.save_model, or register a single model file",
            )
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(SIGNATURE_FILE))
        return target
    if not source.is_file():
        raise NotFoundError(f"model source {source} does not exist", hint="check the path")
    flavor = _SUFFIX_FLAVORS.get(source.suffix)
    if flavor is None and source.name.endswith((".lgb", ".lgb.txt")):
        flavor = "lightgbm"
    if flavor is None:
        raise InvalidInputError(
            f"cannot tell the flavor of model file {source.name}",
            hint="use .skops, .onnx, .ubj or .lgb.txt, or save a model directory",
        )
    module = get_flavor(flavor)
    target.mkdir(parents=True)
    shutil.copyfile(source, target / module.FILE)
    ModelMeta(flavor, [module.FILE], {"source_file": source.name}).write(target)
    return target


def upload_dir(platform: Platform, directory: Path) -> dict[str, dict[str, Any]]:
    """Store every file of ``directory``; returns the manifest path -> digest, size."""
    manifest: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        info = platform.artifacts.put(path)
        manifest[path.relative_to(directory).as_posix()] = {
            "digest": info.digest,
            "size": info.size,
        }
    return manifest


def fetch_files(platform: Platform, files: dict[str, dict[str, Any]], dest: Path) -> list[str]:
    """Write exactly the manifest's files into ``dest`` (each digest checked), then verify
    the signature over them; returns the signed files, the only ones a loader may open.

    Raises:
        IntegrityError: a digest, a path or the signature does not verify.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for relative, entry in files.items():
        target = (dest / relative).resolve()
        if not target.is_relative_to(dest.resolve()):
            raise IntegrityError(
                f"model file path {relative!r} escapes the model directory",
                hint="the registry entry is corrupt; re-register the model",
            )
        platform.artifacts.get(str(entry["digest"]), target)
    return verify_dir(platform, dest)


def temp_workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="ghaf-model-")
