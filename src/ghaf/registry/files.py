"""A version's files: signed, stored, fetched and verified (staging: ``ghaf.registry.staging``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ghaf.errors import IntegrityError
from ghaf.platform import Platform
from ghaf.security.signing import SIGNATURE_FILE, sign_model_dir, verify_model_dir


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
