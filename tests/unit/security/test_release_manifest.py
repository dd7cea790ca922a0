"""The release manifest: signed with the files, read back strictly, compared field by field."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ghaf.errors import IntegrityError
from ghaf.platform import Platform
from ghaf.security.homekeys import public_key_path
from ghaf.security.release_manifest import RELEASE_FILE, Release, check_release
from ghaf.security.signing import (
    sign_model_dir,
    sign_release,
    signed_files,
    verify_model_dir,
    verify_signed_dir,
)

BIN = Path(sys.executable).parent


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    (directory / "weights").mkdir(parents=True)
    (directory / "ghaf-model.json").write_text('{"flavor": "skops"}')
    (directory / "weights" / "model.skops").write_bytes(bytes(range(256)) * 100)
    return directory


def _digests(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*")
        if p.is_file() and p.name not in (RELEASE_FILE, "model.sig")
    }


def _release(directory: Path, **changes: object) -> Release:
    fields: dict[str, object] = {
        "model": "fraud",
        "version": 3,
        "project": "risk",
        "files": _digests(directory),
    }
    return Release(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_signature_covers_the_release_and_verification_returns_it(
    platform: Platform, model_dir: Path
) -> None:
    release = _release(model_dir)
    sign_release(platform.settings, model_dir, release)
    signed = verify_signed_dir(platform.settings, model_dir)
    assert signed.release == release
    assert sorted(signed.files) == ["ghaf-model.json", RELEASE_FILE, "weights/model.skops"]
    assert verify_model_dir(platform.settings, model_dir) == sorted(signed.files)
    body = json.loads((model_dir / RELEASE_FILE).read_text())
    assert body["format"] == "ghaf-release/1"
    assert (body["model"], body["version"], body["project"]) == ("fraud", 3, "risk")


def test_the_public_model_signing_cli_verifies_a_sealed_directory_and_its_release(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    sign_release(platform.settings, model_dir, _release(model_dir))
    args = [str(BIN / "model_signing"), "verify", "key", str(model_dir)]
    args += ["--signature", str(model_dir / "model.sig")]
    args += ["--public_key", str(public_key_path(platform.settings))]
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "Verification succeeded" in done.stdout + done.stderr, done.stdout + done.stderr
    # Renaming the release in place is a change the public tool sees too.
    text = (model_dir / RELEASE_FILE).read_text().replace('"version": 3', '"version": 1')
    (model_dir / RELEASE_FILE).write_text(text)
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "Verification succeeded" not in done.stdout + done.stderr
    with pytest.raises(IntegrityError, match=r"Hash mismatch.*ghaf-release\.json"):
        verify_signed_dir(platform.settings, model_dir)


def test_a_release_added_after_signing_is_refused(platform: Platform, model_dir: Path) -> None:
    sign_model_dir(platform.settings, model_dir)
    _release(model_dir).write(model_dir)
    with pytest.raises(IntegrityError, match="failed signature verification"):
        verify_signed_dir(platform.settings, model_dir)


def test_signing_refuses_a_release_that_does_not_list_the_files(
    platform: Platform, model_dir: Path
) -> None:
    wrong = {**_digests(model_dir), "weights/model.skops": "0" * 64}
    with pytest.raises(
        IntegrityError, match=r"weights/model\.skops \(release manifest 000000000000"
    ):
        sign_release(platform.settings, model_dir, _release(model_dir, files=wrong))
    missing = _digests(model_dir)
    del missing["ghaf-model.json"]
    with pytest.raises(IntegrityError, match=r"ghaf-model\.json \(only in the signature\)"):
        sign_release(platform.settings, model_dir, _release(model_dir, files=missing))


def test_a_trusted_key_signing_a_lying_release_is_refused(
    platform: Platform, model_dir: Path
) -> None:
    """An insider with the key (or a bug) signs a manifest naming other bytes."""
    lie = {**_digests(model_dir), "weights/model.skops": "ab" * 32}
    _release(model_dir, files=lie).write(model_dir)
    sign_model_dir(platform.settings, model_dir)
    real = _digests(model_dir)["weights/model.skops"][:12]
    with pytest.raises(IntegrityError) as info:
        verify_signed_dir(platform.settings, model_dir)
    assert "does not match the signed files" in info.value.headline
    assert f"weights/model.skops (release manifest abababababab, signature {real})" in (
        info.value.headline
    )


BAD_MANIFESTS = {
    "not json": (b"{nope", "is not JSON"),
    "other format": (b'{"format": "ghaf-release/9"}', "format is not 'ghaf-release/1'"),
    "version a string": (
        b'{"format": "ghaf-release/1", "model": "fraud", "version": "1", "project": "p",'
        b' "files": {}}',
        "version is not a positive integer",
    ),
    "version a bool": (
        b'{"format": "ghaf-release/1", "model": "fraud", "version": true, "project": "p",'
        b' "files": {}}',
        "version is not a positive integer",
    ),
    "no project": (
        b'{"format": "ghaf-release/1", "model": "fraud", "version": 1, "files": {}}',
        "project is not a name",
    ),
    "files a list": (
        b'{"format": "ghaf-release/1", "model": "m", "version": 1, "project": "p", "files": []}',
        "files is not a map of path to SHA-256",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_MANIFESTS))
def test_a_signed_but_malformed_release_is_refused_naming_the_field(
    platform: Platform, model_dir: Path, kind: str
) -> None:
    data, message = BAD_MANIFESTS[kind]
    (model_dir / RELEASE_FILE).write_bytes(data)
    sign_model_dir(platform.settings, model_dir)
    assert RELEASE_FILE in signed_files(model_dir / "model.sig")
    with pytest.raises(IntegrityError, match=message):
        verify_signed_dir(platform.settings, model_dir)


def test_re_signing_replaces_the_old_signature_instead_of_signing_it(
    platform: Platform, model_dir: Path
) -> None:
    sign_model_dir(platform.settings, model_dir)
    sign_release(platform.settings, model_dir, _release(model_dir))
    assert "model.sig" not in signed_files(model_dir / "model.sig")
    assert verify_signed_dir(platform.settings, model_dir).release is not None


def test_check_release_names_each_difference() -> None:
    signed = Release("fraud", 2, "risk", {"a.bin": "1" * 64, "b.bin": "2" * 64})
    assert check_release(signed, model="fraud", version=2, project="risk") is signed
    assert check_release(signed, model="fraud", version="2", project=None) is signed
    with pytest.raises(IntegrityError) as info:
        check_release(
            signed,
            model="fraud",
            version=1,
            project="payments",
            files={"a.bin": "3" * 64, "c.bin": "4" * 64},
        )
    assert info.value.headline == (
        "fraud:1 refused: its files are signed for fraud:2, not fraud:1; "
        "signed for project 'risk', not 'payments'; file digests differ from the signed "
        "ones: a.bin (registry 333333333333, signed release 111111111111), "
        "b.bin (only in the signed release), c.bin (only in the registry)"
    )
    with pytest.raises(IntegrityError, match="fraud:2 refused: its signature names no release"):
        check_release(None, model="fraud", version=2, project="risk")
