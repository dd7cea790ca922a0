"""Key-encryption keys: the local versioned key file (default) and a KEK given in settings."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ghaf.errors import ConfigError, IntegrityError, InvalidInputError, NotFoundError
from ghaf.metadata.base import utcnow
from ghaf.security.base import WrappedKey

KEK_FORMAT = "ghaf-kek/1"
_NONCE = 12


def _wrap(kek: bytes, key_id: str, version: int, data_key: bytes, context: bytes) -> WrappedKey:
    nonce = os.urandom(_NONCE)
    blob = nonce + AESGCM(kek).encrypt(nonce, data_key, context)
    return WrappedKey(key_id, version, blob)


def _unwrap(kek: bytes, wrapped: WrappedKey, context: bytes) -> bytes:
    try:
        return AESGCM(kek).decrypt(wrapped.blob[:_NONCE], wrapped.blob[_NONCE:], context)
    except InvalidTag as exc:
        raise IntegrityError(
            f"wrapped data key does not verify under KEK {wrapped.key_id} "
            f"version {wrapped.version} (header or its context was altered)",
            hint="the artifact's header was tampered with; restore it from a replica",
        ) from exc


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``, mode 0600, fsynced (file and directory)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LocalKeyProvider:
    """A versioned KEK in a JSON file (mode 0600) in the home: ``keys/kek.json``.

    The file holds every live version; destroying a version deletes its key
    material and records when, so artifacts still wrapped by it say why they
    cannot be read.
    """

    supports_rotation: ClassVar[bool] = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self._doc: dict[str, Any] | None = None
        self._stamp: tuple[int, ...] | None = None

    @property
    def key_id(self) -> str:
        return str(self._load()["key_id"])

    def _load(self, *, fresh: bool = False) -> dict[str, Any]:
        """The key file's document, re-read whenever the file changed on disk.

        Another worker or a CLI ``ghaf keys rotate``/``destroy-version`` replaces the
        file (a new inode each time), so a cached copy would keep wrapping with a
        retired version and serve destroyed material: one ``stat`` per call sees it.
        """
        try:
            stamp = _stamp(self.path.stat())
            if self._doc is not None and not fresh and stamp == self._stamp:
                return self._doc
            with self.path.open("rb") as handle:
                stamp = _stamp(os.fstat(handle.fileno()))
                doc = orjson.loads(handle.read())
        except FileNotFoundError as exc:
            raise ConfigError(
                f"no key-encryption key at {self.path}",
                hint="run `ghaf init` to create it, or set security.kek_file",
            ) from exc
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"key file {self.path} is not valid JSON") from exc
        if not isinstance(doc, dict) or doc.get("format") != KEK_FORMAT:
            raise ConfigError(f"key file {self.path} is not a {KEK_FORMAT} file")
        self._doc, self._stamp = doc, stamp
        return self._doc

    def current_version(self) -> int:
        return int(self._load()["current"])

    def versions(self) -> dict[int, str]:
        """Every version ever made: ``"live"`` or ``"destroyed <time>"``."""
        doc = self._load(fresh=True)
        states = {int(v): "live" for v in doc["versions"]}
        states.update({int(v): f"destroyed {at}" for v, at in doc["destroyed"].items()})
        return dict(sorted(states.items()))

    def rotation_pending(self) -> int | None:
        """The version an unfinished rotation was re-wrapping to, if any."""
        pending = self._load(fresh=True).get("rotating_to")
        return int(pending) if pending is not None else None

    def _material(self, doc: dict[str, Any], version: int) -> bytes:
        material = doc["versions"].get(str(version))
        if material is not None:
            return base64.b64decode(material["key"])
        destroyed = doc["destroyed"].get(str(version))
        if destroyed is not None:
            raise NotFoundError(
                f"KEK {doc['key_id']} version {version} was destroyed at {destroyed}: "
                "data keys wrapped only by it are crypto-shredded",
                hint="nothing can decrypt it any more; re-create the artifact from its source",
            )
        raise NotFoundError(
            f"KEK {doc['key_id']} has no version {version}",
            hint=f"the key file {self.path} is not the one these artifacts were written with",
        )

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        doc = self._load()  # the current version and its material from one read
        version = int(doc["current"])
        key = self._material(doc, version)
        return _wrap(key, str(doc["key_id"]), version, data_key, context)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        doc = self._load()
        if wrapped.key_id != doc["key_id"]:
            raise NotFoundError(
                f"artifact key is wrapped by KEK {wrapped.key_id}, this home has {doc['key_id']}",
                hint="point security.kek_file at the key file the artifacts were written with",
            )
        return _unwrap(self._material(doc, wrapped.version), wrapped, context)

    def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        return self.wrap(self.unwrap(wrapped, context), context)

    # Changes to the file, under an exclusive lock -------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.path.parent / ".kek.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            doc = self._load(fresh=True)
            self._doc = None  # edited in place below: served again only once read back
            yield doc
            write_private_file(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2))

    def create(self) -> bool:
        """Create the key file with version 1 if it does not exist; True if created."""
        if self.path.exists():
            return False
        doc = {
            "format": KEK_FORMAT,
            "key_id": base64.b32encode(os.urandom(10)).decode().lower(),
            "current": 1,
            "versions": {"1": _new_version()},
            "destroyed": {},
            "rotating_to": None,
        }
        write_private_file(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        return True

    def begin_rotation(self) -> int:
        """Add a version and make it current, or return the one an unfinished rotation made."""
        with self._locked() as doc:
            if doc.get("rotating_to") is None:
                version = max(int(v) for v in (*doc["versions"], *doc["destroyed"])) + 1
                doc["versions"][str(version)] = _new_version()
                doc["current"] = version
                doc["rotating_to"] = version
            return int(doc["rotating_to"])

    def finish_rotation(self) -> None:
        with self._locked() as doc:
            doc["rotating_to"] = None

    def destroy_version(self, version: int) -> None:
        """Delete a version's key material (crypto-shredding); the current one is refused."""
        with self._locked() as doc:
            if str(version) not in doc["versions"]:
                raise NotFoundError(
                    f"KEK {doc['key_id']} has no live version {version}",
                    hint="`ghaf keys list` shows the versions",
                )
            if version == int(doc["current"]):
                raise InvalidInputError(
                    f"KEK version {version} is the current version",
                    hint="run `ghaf keys rotate` first, then destroy the old version",
                )
            del doc["versions"][str(version)]
            doc["destroyed"][str(version)] = utcnow().isoformat()


def _stamp(stat: os.stat_result) -> tuple[int, ...]:
    """What changes when the key file is replaced or rewritten."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _new_version() -> dict[str, str]:
    return {"key": base64.b64encode(os.urandom(32)).decode(), "created_at": utcnow().isoformat()}


class StaticKeyProvider:
    """A KEK supplied from outside (``GHAF_SECURITY__KEK``, e.g. a container secret).

    The value is ``BASE64`` (version 1) or ``1:BASE64,2:BASE64``; the highest
    version is current. Rotation happens where the secret is managed.
    """

    supports_rotation: ClassVar[bool] = False

    def __init__(self, key_id: str, spec: str) -> None:
        self.key_id = key_id
        self._keys: dict[int, bytes] = {}
        for index, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
            version, _, material = part.rpartition(":")
            try:
                key = base64.b64decode(material, validate=True)
                number = int(version) if version else index + 1
            except ValueError as exc:
                raise ConfigError(
                    "setting security.kek (GHAF_SECURITY__KEK) is not BASE64 or VERSION:BASE64",
                    hint="generate one with: python -c 'import os,base64;"
                    "print(base64.b64encode(os.urandom(32)).decode())'",
                ) from exc
            if len(key) != 32:
                raise ConfigError(
                    f"setting security.kek version {number} is {len(key)} bytes, expected 32"
                )
            self._keys[number] = key
        if not self._keys:
            raise ConfigError("setting security.kek is empty")

    def current_version(self) -> int:
        return max(self._keys)

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        version = self.current_version()
        return _wrap(self._keys[version], self.key_id, version, data_key, context)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        key = self._keys.get(wrapped.version)
        if wrapped.key_id != self.key_id or key is None:
            raise NotFoundError(
                f"KEK {wrapped.key_id} version {wrapped.version} is not in security.kek",
                hint="add that version to GHAF_SECURITY__KEK, or it was retired (shredded)",
            )
        return _unwrap(key, wrapped, context)

    def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        return self.wrap(self.unwrap(wrapped, context), context)
