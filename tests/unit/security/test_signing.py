"""Model signing: the public model_signing CLI accepts Ghaf's signatures; any tampering refuses."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ghaf.errors import IntegrityError
from ghaf.platform import Platform
from ghaf.security.homekeys import public_key_path, trust_dir
from ghaf.security.signing import sign_model_dir, verify_model_dir

BIN = Path(sys.executable).parent


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "model"
    (directory / "weights").mkdir(parents=True)
    (directory / "MLmodel.json").write_text('{"flavor": "skops"}')
    (directory / "weights" / "model.skops").write_bytes(bytes(range(256)) * 100)
    return directory


def test_sign_then_verify_lists_signed_files(platform: Platform, model_dir: Path) -> None:
    sign_model_dir(platform.settings, model_dir)
    assert (model_dir / "model.sig").is_file()
    assert verify_model_dir(platform.settings, model_dir) == ["MLmodel.json", "weights/model.skops"]


def test_public_model_signing_cli_accepts_the_signature(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    sign_model_dir(platform.settings, model_dir)
    public = public_key_path(platform.settings)
    args = [str(BIN / "model_signing"), "verify", "key", str(model_dir)]
    args += ["--signature", str(model_dir / "model.sig"), "--public_key", str(public)]
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "Verification succeeded" in done.stdout + done.stderr, done.stdout + done.stderr
    (model_dir / "MLmodel.json").write_text('{"flavor": "pickle"}')
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "Verification succeeded" not in done.stdout + done.stderr


def _flip(model_dir: Path) -> None:
    path = model_dir / "weights" / "model.skops"
    raw = bytearray(path.read_bytes())
    raw[1234] ^= 1
    path.write_bytes(bytes(raw))


def _forge(model_dir: Path) -> None:
    bundle = json.loads((model_dir / "model.sig").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (model_dir / "model.sig").write_text(json.dumps(bundle))


TAMPERINGS = {
    "byte flipped": _flip,
    "extra file": lambda d: (d / "evil.pkl").write_bytes(b"\x80\x04."),
    "file removed": lambda d: (d / "MLmodel.json").unlink(),
    "file renamed": lambda d: (d / "MLmodel.json").rename(d / "MLmodel2.json"),
    "symlink added": lambda d: (d / "link").symlink_to(d / "MLmodel.json"),
    "forged statement": _forge,
    "garbage signature": lambda d: (d / "model.sig").write_text("{not json"),
    "signature removed": lambda d: (d / "model.sig").unlink(),
}


@pytest.mark.parametrize("kind", sorted(TAMPERINGS))
def test_tampering_is_refused(platform: Platform, model_dir: Path, kind: str) -> None:
    sign_model_dir(platform.settings, model_dir)
    TAMPERINGS[kind](model_dir)
    with pytest.raises(IntegrityError, match="model"):
        verify_model_dir(platform.settings, model_dir)


def test_wrong_key_is_refused_until_trusted(
    platform: Platform, model_dir: Path, tmp_path: Path
) -> None:
    from model_signing import hashing, signing

    other = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "other.pem"
    key_file.write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = hashing.Config().use_file_serialization(ignore_paths=[Path("model.sig")])
    signing.Config().use_elliptic_key_signer(private_key=key_file).set_hashing_config(config).sign(
        model_dir, model_dir / "model.sig"
    )
    with pytest.raises(IntegrityError, match="failed signature verification"):
        verify_model_dir(platform.settings, model_dir)
    pub = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "other.pub.pem").write_bytes(pub)
    from ghaf.access.rotation import trust_key

    trust_key(platform, platform.admin(), tmp_path / "other.pub.pem")
    assert len(list(trust_dir(platform.settings).glob("*.pem"))) == 2
    assert verify_model_dir(platform.settings, model_dir) == ["MLmodel.json", "weights/model.skops"]


def test_empty_trust_store_refuses(platform: Platform, model_dir: Path) -> None:
    sign_model_dir(platform.settings, model_dir)
    for path in trust_dir(platform.settings).glob("*.pem"):
        path.unlink()
    with pytest.raises(IntegrityError, match="trust store is empty"):
        verify_model_dir(platform.settings, model_dir)
