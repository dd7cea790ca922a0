"""`ghaf init` keys, `ghaf verify` and `ghaf keys trust` as a user types them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ghaf.platform import Platform
from ghaf.security.homekeys import signing_key_path, trust_dir
from ghaf.security.signing import sign_model_dir


def _ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Rich wraps long lines to the terminal width: compare words, not line breaks.
    done.stdout, done.stderr = " ".join(done.stdout.split()), " ".join(done.stderr.split())
    return done


def test_init_creates_private_keys(platform: Platform) -> None:
    for path in (platform.settings.kek_path, signing_key_path(platform.settings)):
        assert path.stat().st_mode & 0o777 == 0o600
    assert len(list(trust_dir(platform.settings).glob("*.pem"))) == 1
    before = platform.settings.kek_path.read_bytes()
    again = _ghaf(platform.settings.home, "init")  # idempotent: keys are kept
    assert again.returncode == 0
    assert platform.settings.kek_path.read_bytes() == before


def test_verify_command(platform: Platform, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"onnx bytes")
    sign_model_dir(platform.settings, model)
    home = platform.settings.home
    ok = _ghaf(home, "verify", str(model))
    assert ok.returncode == 0 and "1 signed files, signature trusted" in ok.stdout
    (model / "model.onnx").write_bytes(b"evil bytes")
    bad = _ghaf(home, "verify", str(model))
    assert bad.returncode == 8 and "failed signature verification" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = _ghaf(home, "verify", "no-such-model")
    assert missing.returncode in (3, 4) and "Traceback" not in missing.stderr


def test_keys_trust_bad_input(platform: Platform, tmp_path: Path) -> None:
    home = platform.settings.home
    missing = _ghaf(home, "keys", "trust", str(tmp_path / "absent.pem"))
    assert missing.returncode == 4 and "cannot read public key file" in missing.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    bad = _ghaf(home, "keys", "trust", str(junk))
    assert bad.returncode == 3 and "not a PEM" in bad.stderr
    assert len(list(trust_dir(platform.settings).glob("*.pem"))) == 1  # nothing added
