"""Model signing in the OpenSSF model-signing format (ECDSA P-256 key of the home).

``sign_model_dir`` writes ``model.sig`` (a Sigstore bundle holding a DSSE-signed
in-toto statement: the SHA-256 of every file) into the model directory, so the
public tool verifies it too::

    model_signing verify key MODEL_DIR --signature MODEL_DIR/model.sig \\
        --public_key HOME/keys/signing.pub.pem

``sign_release`` first writes ``ghaf-release.json`` (the model, version, project and
file digests the signature is for, see :mod:`ghaf.security.release_manifest`), so the
bundle covers it too and the public tool still verifies the directory.

``verify_model_dir`` checks the bundle against every key in the home's trust
store and returns the files the signed manifest lists: loaders load only those.
Any failure at all (a changed, missing or extra file, a symlink, another key, a
forged or unreadable bundle, a release manifest that disagrees with the signed
files) is an :class:`~ghaf.errors.IntegrityError`. Whether the release is the one a
loader asked for is the loader's check (:func:`~ghaf.security.release_manifest.check_release`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghaf.errors import ConfigError, IntegrityError, MissingDependencyError
from ghaf.security.homekeys import signing_key_path, trusted_keys
from ghaf.security.release_manifest import RELEASE_FILE, Release, check_signed_digests
from ghaf.settings import GhafSettings

SIGNATURE_FILE = "model.sig"


@dataclass(frozen=True)
class SignedDir:
    """A verified directory: the signed files (path -> SHA-256) and its release, if any."""

    files: dict[str, str]
    release: Release | None


def _model_signing() -> Any:
    try:
        import model_signing
    except ImportError as exc:  # it also needs pyOpenSSL, which it does not declare
        raise MissingDependencyError(f"model-signing ({exc.name})", "ml") from exc
    return model_signing


def _hashing_config(ms: Any) -> Any:
    # Explicit, so verification never guesses the serialization from the bundle.
    return ms.hashing.Config().use_file_serialization(
        hashing_algorithm="sha256",
        allow_symlinks=False,
        ignore_paths=[Path(SIGNATURE_FILE)],
    )


def _check_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise IntegrityError(
            f"model directory {model_dir} does not exist",
            hint="pass the directory that holds the model files and model.sig",
        )


def sign_model_dir(settings: GhafSettings, model_dir: Path) -> None:
    """Sign every file in ``model_dir`` with the home's key, writing ``model.sig``."""
    _check_dir(model_dir)
    ms = _model_signing()
    key = signing_key_path(settings)
    if not key.exists():
        raise ConfigError(f"no signing key at {key}", hint="run `ghaf init` to create it")
    # A previous signature is replaced, never signed: model-signing only leaves it out
    # of the manifest when verifying.
    (model_dir / SIGNATURE_FILE).unlink(missing_ok=True)
    try:
        (
            ms.signing.Config()
            .use_elliptic_key_signer(private_key=key)
            .set_hashing_config(_hashing_config(ms))
            .sign(model_dir, model_dir / SIGNATURE_FILE)
        )
    except Exception as exc:
        raise IntegrityError(
            f"cannot sign model directory {model_dir}: {exc}",
            hint="symlinks are refused; sign a directory of regular files",
        ) from exc


def sign_release(settings: GhafSettings, model_dir: Path, release: Release) -> None:
    """Write ``release`` into ``model_dir`` as ``ghaf-release.json``, then sign it all.

    Raises:
        IntegrityError: the directory cannot be signed, or ``release.files`` does not
            list exactly the directory's files with their digests.
    """
    release.write(model_dir)
    sign_model_dir(settings, model_dir)
    check_signed_digests(release, signed_digests(model_dir / SIGNATURE_FILE), model_dir)


def signed_digests(signature: Path) -> dict[str, str]:
    """Path -> SHA-256 from a bundle's statement (only meaningful once it verified)."""
    bundle = json.loads(signature.read_bytes())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return {
        str(resource["name"]): str(resource["digest"])
        for resource in statement["predicate"]["resources"]
    }


def signed_files(signature: Path) -> list[str]:
    """The file names in a bundle's statement (only meaningful once it verified)."""
    return sorted(signed_digests(signature))


def verify_model_dir(settings: GhafSettings, model_dir: Path) -> list[str]:
    """Verify ``model_dir`` against the trust store; return the signed file names.

    Raises:
        IntegrityError: on any failure, naming what failed.
    """
    return sorted(verify_signed_dir(settings, model_dir).files)


def verify_signed_dir(settings: GhafSettings, model_dir: Path) -> SignedDir:
    """Verify ``model_dir`` against the trust store; its signed files and release.

    A ``ghaf-release.json`` among the signed files must list exactly the other signed
    files with their digests.

    Raises:
        IntegrityError: on any failure, naming what failed.
    """
    _check_dir(model_dir)
    signature = model_dir / SIGNATURE_FILE
    if not signature.is_file():
        raise IntegrityError(
            f"model directory {model_dir} is not signed (no {SIGNATURE_FILE})",
            hint="register the model through Ghaf, which signs it",
        )
    keys = trusted_keys(settings)
    if not keys:
        raise IntegrityError(
            "the trust store is empty: no signature can be accepted",
            hint="run `ghaf init`, or `ghaf keys trust PUBLIC_KEY.pem`",
        )
    ms = _model_signing()
    errors: list[str] = []
    for key in keys:
        try:
            (
                ms.verifying.Config()
                .use_elliptic_key_verifier(public_key=key)
                .set_hashing_config(_hashing_config(ms))
                .verify(model_dir, signature)
            )
        except Exception as exc:  # noqa: BLE001 - any failure at all means refuse
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        return _signed_dir(model_dir, signature)  # the bundle verified: read what it says
    mismatch = [e for e in errors if "mismatch" in e.lower()]
    reason = mismatch[0] if mismatch else errors[-1]
    raise IntegrityError(
        f"model {model_dir} failed signature verification ({len(keys)} trusted keys): {reason}",
        hint="do not load it; re-register the model from a trusted source",
    )


def _signed_dir(model_dir: Path, signature: Path) -> SignedDir:
    digests = signed_digests(signature)
    release = Release.read(model_dir) if RELEASE_FILE in digests else None
    if release is not None:
        check_signed_digests(release, digests, model_dir)
    return SignedDir(digests, release)
