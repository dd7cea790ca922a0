"""A version's files: signed, stored, fetched and verified (staging: ``ghaf.registry.staging``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.errors import IntegrityError
from ghaf.platform import Platform
from ghaf.security.release_manifest import RELEASE_FILE, Release
from ghaf.security.signing import SIGNATURE_FILE, SignedDir, sign_release, verify_signed_dir

SEAL_FILES = (RELEASE_FILE, SIGNATURE_FILE)
"""What sealing adds to a version's files: the release manifest and the signature over all."""


def release_digests(files: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Path -> SHA-256 of a registry manifest's model files (the seal's own files left out)."""
    return {path: str(entry["digest"]) for path, entry in files.items() if path not in SEAL_FILES}


def seal_dir(platform: Platform, directory: Path, release: Release) -> dict[str, dict[str, Any]]:
    """Sign ``directory`` for ``release`` with the home's key; store the seal's two files.

    Returns:
        The manifest entries (path -> digest, size) of ``ghaf-release.json`` and ``model.sig``.
    """
    sign_release(platform.settings, directory, release)
    return _upload(platform, directory, [directory / name for name in SEAL_FILES])


def verify_dir(platform: Platform, directory: Path) -> SignedDir:
    """Verify the signature over ``directory`` against the trust store; what it signed.

    Raises:
        IntegrityError: any failure, or a file in ``directory`` the signature does not list.
    """
    signed = verify_signed_dir(platform.settings, directory)
    listed = set(signed.files)
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
    return signed


def upload_dir(platform: Platform, directory: Path) -> dict[str, dict[str, Any]]:
    """Store every file of ``directory``; returns the manifest path -> digest, size."""
    return _upload(platform, directory, [p for p in directory.rglob("*") if p.is_file()])


def _upload(platform: Platform, directory: Path, paths: list[Path]) -> dict[str, dict[str, Any]]:
    manifest: dict[str, dict[str, Any]] = {}
    for path in sorted(paths):
        info = platform.artifacts.put(path)
        manifest[path.relative_to(directory).as_posix()] = {
            "digest": info.digest,
            "size": info.size,
        }
    return manifest


def fetch_files(platform: Platform, files: dict[str, dict[str, Any]], dest: Path) -> SignedDir:
    """Write exactly the manifest's files into ``dest`` (each digest checked), then verify
    the signature over them; returns what it signed: the only files a loader may open,
    and the release they are signed for.

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
