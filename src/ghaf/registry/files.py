"""A version's files: staged from a directory or file, signed, stored, fetched and verified."""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ghaf.errors import IntegrityError, InvalidInputError, NotFoundError
from ghaf.models.base import MODEL_FILE, ModelMeta
from ghaf.platform import Platform

SIGNATURE_FILE = "model.sig"
_SUFFIX_FLAVORS = {
    ".skops": "skops",
    ".onnx": "onnx",
    ".ubj": "xgboost",
}


def _signing() -> Any:
    """The security concern's signing module, or None where it is not installed."""
    try:
        return importlib.import_module("ghaf.security.signing")
    except ImportError:
        return None


def signing_available() -> bool:
    return _signing() is not None


def sign_dir(platform: Platform, directory: Path) -> bool:
    """Sign ``directory`` with the platform key when the signing module is installed."""
    signing = _signing()
    if signing is None:
        return False
    signing.sign_model_dir(platform.settings, directory)
    return True


def verify_dir(platform: Platform, directory: Path) -> None:
    """Verify the signature over ``directory``; the manifest must list exactly its files."""
    signing = _signing()
    if signing is None:
        raise IntegrityError(
            f"{directory} is signed but ghaf.security.signing is not installed to verify it",
            hint="install Ghaf with its security module",
        )
    listed = {str(p) for p in signing.verify_model_dir(platform.settings, directory)}
    present = {
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name != SIGNATURE_FILE
    }
    if listed and present - listed:
        raise IntegrityError(
            f"files not covered by the signature: {', '.join(sorted(present - listed))}",
            hint="the model directory was tampered with; re-register it",
        )


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
    from ghaf.models.flavors import get_flavor

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


def fetch_files(
    platform: Platform, files: dict[str, dict[str, Any]], dest: Path, *, signed: bool
) -> Path:
    """Write exactly the manifest's files into ``dest`` (each verified), then the signature."""
    dest.mkdir(parents=True, exist_ok=True)
    for relative, entry in files.items():
        target = (dest / relative).resolve()
        if not target.is_relative_to(dest.resolve()):
            raise IntegrityError(
                f"model file path {relative!r} escapes the model directory",
                hint="the registry entry is corrupt; re-register the model",
            )
        platform.artifacts.get(str(entry["digest"]), target)
    if signed:
        verify_dir(platform, dest)
    return dest


def temp_workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="ghaf-model-")
