"""Fetching a version's files (verified) and loading the model they hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.artifacts.scratch import scratch_dir
from ghaf.errors import IntegrityError
from ghaf.models.base import MODEL_FILE, LoadedModel, ModelMeta
from ghaf.models.flavors import load_model_dir
from ghaf.platform import Platform
from ghaf.registry.base import ModelVersion
from ghaf.registry.code_policy import get_code_policy
from ghaf.registry.files import fetch_files, release_digests
from ghaf.registry.service import get_model_version
from ghaf.security.release_manifest import check_release


def download_version(platform: Platform, version: ModelVersion, dest: Path) -> Path:
    """Write ``version``'s files into ``dest``: each digest checked, the signature verified,
    and the signature shown to be for this model, version and project.

    Raises:
        IntegrityError: the version is unsigned, a digest or the signature does not
            verify, the signed ``ghaf-release.json`` names another model, version,
            project or other file digests (naming both sides), or its ``ghaf-model.json``
            names files the signature does not list.
    """
    if not version.signed:
        raise IntegrityError(
            f"{version.ref} was registered without a signature and cannot be verified",
            hint="re-register the model (registration signs it), then use the new version",
        )
    signed = fetch_files(platform, version.files, dest)
    check_release(
        signed.release,
        model=version.name,
        version=version.version,
        project=version.project,
        files=release_digests(version.files),
    )
    meta = ModelMeta.read(dest)
    unlisted = [f for f in meta.files if f not in signed.files or f not in version.files]
    if meta.flavor != version.flavor or unlisted:
        raise IntegrityError(
            f"{version.ref}: {MODEL_FILE} does not match the registry entry",
            hint="the model files were altered after registration; re-register the model",
        )
    return dest


def download_model(platform: Platform, ref: str, dest: Path) -> Path:
    """Fetch the files of the version ``ref`` names into ``dest``, verified; returns ``dest``.

    Raises:
        NotFoundError: no such version.
        IntegrityError: a digest or the signature does not verify.
    """
    return download_version(platform, get_model_version(platform, ref), dest)


def load_version(platform: Platform, version: ModelVersion) -> LoadedModel:
    """Verify and load ``version``'s model."""
    with scratch_dir(platform.settings.home, "load-") as tmp:
        directory = download_version(platform, version, tmp / "model")
        # Custom code runs only as the project's code policy allows it now.
        model = load_model_dir(directory, code_policy=get_code_policy(platform, version.project))
    model.version = version  # type: ignore[attr-defined]
    return model


def load_model(platform: Platform, ref: str) -> Any:
    """Verify and load the model ``ref`` names (``fraud@champion``, ``fraud:3``, ``fraud``).

    Returns an object with ``predict``/``predict_proba`` on Arrow, pandas or NumPy input.
    """
    return load_version(platform, get_model_version(platform, ref))
