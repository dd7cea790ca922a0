"""The encrypted artifact store: ciphertext at rest, every tampering refused, nothing written."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import orjson
import pytest

from ghaf.artifacts.local import LocalBlobStore
from ghaf.errors import ConfigError, IntegrityError, NotFoundError
from ghaf.platform import Platform
from ghaf.security.chunked import CT_CHUNK, HEADER_SIZE
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.security.keys import LocalKeyProvider, StaticKeyProvider
from ghaf.settings import load_settings

DATA = os.urandom(3 * 16384 + 100)


@pytest.fixture
def store(tmp_path: Path) -> EncryptedArtifactStore:
    keys = LocalKeyProvider(tmp_path / "keys" / "kek.json")
    keys.create()
    return EncryptedArtifactStore(LocalBlobStore(tmp_path / "blobs", region="ae-auh-1"), keys)


def _body(store: EncryptedArtifactStore, digest: str) -> Path:
    root = store.blobs.root  # type: ignore[attr-defined]
    (path,) = (root / "enc" / digest[:2] / digest).iterdir()
    return Path(path)


def _header(store: EncryptedArtifactStore, digest: str) -> Path:
    root = store.blobs.root  # type: ignore[attr-defined]
    (path,) = (root / "hdr" / digest[:2] / digest).iterdir()
    return Path(path)


def test_bytes_at_rest_are_ciphertext(store: EncryptedArtifactStore) -> None:
    marker = b"PLAINTEXT-MARKER-" * 1000
    info = store.put_bytes(marker)
    stored = b"".join(p.read_bytes() for p in store.blobs.root.rglob("*") if p.is_file())  # type: ignore[attr-defined]
    assert b"PLAINTEXT-MARKER-" not in stored
    assert _body(store, info.digest).stat().st_size == len(marker) + HEADER_SIZE + 16 * 2
    header = orjson.loads(_header(store, info.digest).read_bytes())
    assert header["context"]["plaintext_sha256"] == info.digest
    assert header["context"]["region"] == "ae-auh-1"
    assert header["kek_version"] == 1


def _edit_json(path: Path, edit: object) -> None:
    doc = orjson.loads(path.read_bytes())
    edit(doc)  # type: ignore[operator]
    path.write_bytes(orjson.dumps(doc))


def _flip_wrapped(doc: dict) -> None:  # type: ignore[type-arg]
    raw = bytearray(base64.b64decode(doc["wrapped_key"]))
    raw[20] ^= 1
    doc["wrapped_key"] = base64.b64encode(raw).decode()


def _swap_chunks(path: Path) -> None:
    raw = path.read_bytes()
    a = raw[HEADER_SIZE : HEADER_SIZE + CT_CHUNK]
    b = raw[HEADER_SIZE + CT_CHUNK : HEADER_SIZE + 2 * CT_CHUNK]
    path.write_bytes(raw[:HEADER_SIZE] + b + a + raw[HEADER_SIZE + 2 * CT_CHUNK :])


def _flip_body(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + CT_CHUNK + 7] ^= 0x80
    path.write_bytes(bytes(raw))


TAMPERINGS = {
    "header format": ("hdr", lambda p: _edit_json(p, lambda d: d.update(format="x"))),
    "header body id": ("hdr", lambda p: _edit_json(p, lambda d: d.update(body="0" * 16))),
    "wrapped key": ("hdr", lambda p: _edit_json(p, _flip_wrapped)),
    "context project": (
        "hdr",
        lambda p: _edit_json(p, lambda d: d["context"].update(project="other")),
    ),
    "context size": ("hdr", lambda p: _edit_json(p, lambda d: d["context"].update(size=1))),
    "header truncated": ("hdr", lambda p: p.write_bytes(p.read_bytes()[:50])),
    "body byte": ("enc", _flip_body),
    "body salt": ("enc", lambda p: p.write_bytes(b"\0" + p.read_bytes()[1:])),
    "chunk swap": ("enc", _swap_chunks),
    "truncated at chunk boundary": (
        "enc",
        lambda p: p.write_bytes(p.read_bytes()[: HEADER_SIZE + 2 * CT_CHUNK]),
    ),
    "truncated off boundary": ("enc", lambda p: p.write_bytes(p.read_bytes()[:-3])),
    "appended chunk": ("enc", lambda p: p.write_bytes(p.read_bytes() + bytes(CT_CHUNK))),
    "appended byte": ("enc", lambda p: p.write_bytes(p.read_bytes() + b"\0")),
}


@pytest.mark.parametrize("kind", sorted(TAMPERINGS))
def test_tampering_raises_and_writes_nothing(
    store: EncryptedArtifactStore, tmp_path: Path, kind: str
) -> None:
    info = store.put_bytes(DATA)
    where, tamper = TAMPERINGS[kind]
    target = _header(store, info.digest) if where == "hdr" else _body(store, info.digest)
    tamper(target)  # type: ignore[operator]
    out = tmp_path / "out"
    with pytest.raises(IntegrityError):
        store.get(info.digest, out / "model.bin")
    assert list(out.iterdir()) == [] if out.exists() else True
    with pytest.raises(IntegrityError):
        store.read_bytes(info.digest)


def test_header_of_another_artifact_is_refused(
    store: EncryptedArtifactStore, tmp_path: Path
) -> None:
    good = store.put_bytes(b"good model")
    evil = store.put_bytes(b"evil model")
    # Move the evil artifact's header and body under the good digest.
    _header(store, good.digest).write_bytes(_header(store, evil.digest).read_bytes())
    with pytest.raises(IntegrityError, match="belongs to another artifact"):
        store.read_bytes(good.digest)


def test_other_region_is_refused(store: EncryptedArtifactStore) -> None:
    info = store.put_bytes(b"resident data")
    moved = EncryptedArtifactStore(
        LocalBlobStore(store.blobs.root, region="eu-west-1"),  # type: ignore[attr-defined]
        store.keys,
    )
    with pytest.raises(IntegrityError, match="region 'ae-auh-1'"):
        moved.read_bytes(info.digest)


def test_wrong_kek_is_refused(store: EncryptedArtifactStore, tmp_path: Path) -> None:
    info = store.put_bytes(b"secret")
    other = LocalKeyProvider(tmp_path / "other.json")
    other.create()
    with pytest.raises(NotFoundError, match="cannot be decrypted"):
        EncryptedArtifactStore(store.blobs, other).read_bytes(info.digest)


def test_static_provider_round_trip_and_versions(tmp_path: Path) -> None:
    k1 = base64.b64encode(os.urandom(32)).decode()
    k2 = base64.b64encode(os.urandom(32)).decode()
    blobs = LocalBlobStore(tmp_path / "blobs")
    old = EncryptedArtifactStore(blobs, StaticKeyProvider("ctr", k1))
    info = old.put_bytes(b"container data")
    both = EncryptedArtifactStore(blobs, StaticKeyProvider("ctr", f"1:{k1},2:{k2}"))
    assert both.keys.current_version() == 2
    assert both.read_bytes(info.digest) == b"container data"
    assert both.rewrap(info.digest)
    only_new = EncryptedArtifactStore(blobs, StaticKeyProvider("ctr", f"2:{k2}"))
    assert only_new.read_bytes(info.digest) == b"container data"
    with pytest.raises(ConfigError, match="expected 32"):
        StaticKeyProvider("ctr", base64.b64encode(b"short").decode())
    with pytest.raises(ConfigError, match="not BASE64"):
        StaticKeyProvider("ctr", "1:not base64!")


def test_platform_encrypts_by_default_and_kek_from_settings(tmp_path: Path) -> None:
    from ghaf.home import init_home

    with init_home(load_settings(home=tmp_path / "h1")) as platform:
        assert isinstance(platform.artifacts, EncryptedArtifactStore)
        kek = platform.settings.kek_path
        assert kek.stat().st_mode & 0o777 == 0o600
        info = platform.artifacts.put_bytes(b"x" * 100)
        assert platform.artifacts.read_bytes(info.digest) == b"x" * 100
    secret = base64.b64encode(os.urandom(32)).decode()
    settings = load_settings(home=tmp_path / "h2", security={"kek": secret, "kek_id": "k8s"})
    with init_home(settings) as platform:
        assert not settings.kek_path.exists()  # no key file when the KEK comes from outside
        info = platform.artifacts.put_bytes(b"y")
        assert platform.artifacts.read_bytes(info.digest) == b"y"
    plain = load_settings(home=tmp_path / "h3", security={"encrypt_artifacts": False})
    with Platform(plain) as platform:
        assert not isinstance(platform.artifacts, EncryptedArtifactStore)


def test_missing_kek_says_run_init(tmp_path: Path) -> None:
    store = EncryptedArtifactStore(
        LocalBlobStore(tmp_path / "b"), LocalKeyProvider(tmp_path / "none.json")
    )
    with pytest.raises(ConfigError, match="ghaf init"):
        store.put_bytes(b"data")
    assert list(store.digests()) == []
    assert not (tmp_path / "b" / "enc").exists()


def test_digest_matches_plain_sha256(store: EncryptedArtifactStore) -> None:
    info = store.put_bytes(DATA)
    assert info.digest == hashlib.sha256(DATA).hexdigest()


def test_a_project_view_seals_its_own_project_into_the_header(tmp_path: Path) -> None:
    """A server writes for many projects through one platform: the header binds the project
    the write was for (its view), not the server's default, and any view reads it."""
    from ghaf.home import init_home

    with init_home(load_settings(home=tmp_path / "h")) as platform:
        risk = platform.in_project("risk")
        info = risk.artifacts.put_bytes(b"risk's model")
        header = orjson.loads(_header(platform.artifacts, info.digest).read_bytes())  # type: ignore[arg-type]
        assert header["context"]["project"] == "risk" != platform.default_project
        assert platform.artifacts.read_bytes(info.digest) == b"risk's model"
        assert risk.artifacts is risk.artifacts  # one view per project view, not one per use


def test_a_reader_left_unverified_still_refuses_an_altered_body(
    store: EncryptedArtifactStore,
) -> None:
    """verify=False (a download whose client checks the digest) skips only the hash: the
    AEAD tags still refuse any changed byte of the body."""
    info = store.put_bytes(DATA)
    with store.open(info.digest, verify=False) as handle:
        assert handle.read() == DATA
    body = _body(store, info.digest)
    raw = bytearray(body.read_bytes())
    raw[HEADER_SIZE + 10] ^= 1
    body.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError), store.open(info.digest, verify=False) as handle:
        handle.read()
