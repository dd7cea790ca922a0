"""AWS KMS as the key-encryption key: every KEK version is a KMS key; no KEK leaves KMS.

The KEK is named by a KMS alias (``keys.kms_key_id = "alias/NAME"``) whose target is the
current version. The versions, and an unfinished rotation, are aliases too, so every
process of a deployment reads the same state from KMS and the home holds none:

- ``alias/NAME/vN``: version ``N`` (one KMS key each; a version is never reused);
- ``alias/NAME``: the current version (what data keys are wrapped with);
- ``alias/NAME/rotating``: the version an unfinished ``ghaf keys rotate`` re-wraps to.

Data keys are wrapped with ``Encrypt`` and unwrapped with ``Decrypt`` under an
encryption context that names the KEK, the version and the SHA-256 of the artifact's
bound context (which names its project, region, digest and body), so a wrapped key
opens only for the header it was made for; ``ReEncrypt`` re-wraps without the data key
leaving KMS. Destroying a version schedules its KMS key's deletion: KMS refuses the key
at once, and deletes its material when the window ends (crypto-shredding). KMS
CloudTrail records every use with that context.

Ghaf also refuses a version whose key is not enabled before asking KMS to decrypt
(one ``DescribeKey``): it gives the reason by name, and emulators that do not enforce
key states (moto 5.2) behave as KMS does.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from ghaf.errors import (
    BackendUnavailableError,
    ConfigError,
    GhafError,
    IntegrityError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
)
from ghaf.security.base import WrappedKey

_ALIAS = re.compile(r"alias/[A-Za-z0-9/_-]{1,240}")
_PERMISSIONS = (
    "kms:Encrypt, kms:Decrypt, kms:ReEncrypt*, kms:DescribeKey and kms:ListAliases; "
    "rotation also kms:CreateKey, kms:TagResource, kms:CreateAlias, kms:UpdateAlias, "
    "kms:DeleteAlias and kms:ScheduleKeyDeletion"
)
_UNAVAILABLE = {
    "ThrottlingException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    "ServiceUnavailableException",
    "InternalFailure",
}


_SESSION: Any = None
"""The process's boto3 session for KMS clients (clients are thread-safe; sessions are not)."""
_SESSION_LOCK = threading.Lock()


class _RefusedError(Exception):
    """KMS answered with an error: its code and message (translated by the caller)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _State:
    """What KMS's aliases say about the KEK (one ``ListAliases``)."""

    current: str | None
    """The KMS key the main alias targets (the current version)."""
    versions: dict[int, str]
    """Version -> its KMS key."""
    rotating: str | None
    """The KMS key an unfinished rotation re-wraps to."""

    def version_of(self, key: str | None) -> int | None:
        return next((v for v, k in self.versions.items() if k == key), None)


class KmsKeyProvider:
    """A versioned KEK in AWS KMS (see the module docstring for how versions are kept).

    Args:
        alias: the KEK's alias, ``alias/NAME``.
        region: AWS region of the keys; None: the AWS SDK's default.
        endpoint_url: a KMS endpoint (VPC endpoint, emulator); None: AWS's.
        deletion_window_days: the ``PendingWindowInDays`` of a destroyed version (7-30).
        client: a boto3 KMS client to use instead of making one.
    """

    supports_rotation: ClassVar[bool] = True

    def __init__(
        self,
        alias: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        deletion_window_days: int = 7,
        client: Any = None,
    ) -> None:
        if not _ALIAS.fullmatch(alias) or alias.startswith("alias/aws/"):
            raise ConfigError(
                f"setting keys.kms_key_id = {alias!r} is not a KMS alias of your own",
                hint="give alias/NAME (letters, digits, '/', '_', '-'), e.g. alias/ghaf-prod",
            )
        if not 7 <= deletion_window_days <= 30:
            raise ConfigError("setting keys.kms_deletion_window_days must be 7 to 30 (KMS's range)")
        self.alias = alias
        self.name = alias.removeprefix("alias/")
        self._key_id = "kms." + self.name.replace("/", ".")  # '.' is no alias character
        self._window = deletion_window_days
        self._errors = _botocore_errors()
        self._client = client if client is not None else _make_client(region, endpoint_url)
        self._lock = threading.Lock()
        self._versions: dict[int, str] = {}  # cache: a version's key never changes

    @property
    def key_id(self) -> str:
        """``kms.NAME`` ('/' in the alias as '.'): names the KEK in artifact headers."""
        return self._key_id

    # KMS calls -----------------------------------------------------------------------

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        """One KMS call; an error answer raises :class:`_RefusedError`, transport failures
        and missing credentials raise Ghaf's errors."""
        operation = _api_name(method)
        try:
            return dict(getattr(self._client, method)(**params))
        except self._errors.ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if code in _UNAVAILABLE:
                raise BackendUnavailableError(
                    f"KMS could not answer {operation} ({code}): {message}",
                    hint="retry; check the KMS service health and request quotas",
                ) from exc
            raise _RefusedError(code, message) from exc
        except self._errors.NoCredentialsError as exc:
            raise ConfigError(
                "no AWS credentials for KMS",
                hint="give the control plane an AWS role, or set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY in its environment",
            ) from exc
        except self._errors.BotoCoreError as exc:
            raise BackendUnavailableError(
                f"KMS cannot be reached for {operation}: {exc}",
                hint="check keys.kms_endpoint_url / keys.kms_region and the network path",
            ) from exc

    def _state(self) -> _State:
        current = rotating = None
        versions: dict[int, str] = {}
        prefix = self.alias + "/v"
        marker: str | None = None
        while True:
            try:
                page = self._call("list_aliases", **({"Marker": marker} if marker else {}))
            except _RefusedError as exc:
                raise _unexpected("ListAliases", exc) from exc
            for alias in page.get("Aliases", []):
                name, target = alias.get("AliasName", ""), alias.get("TargetKeyId")
                if name == self.alias:
                    current = target
                elif name == f"{self.alias}/rotating":
                    rotating = target
                elif name.startswith(prefix) and name[len(prefix) :].isdigit() and target:
                    versions[int(name[len(prefix) :])] = target
            marker = page.get("NextMarker")
            if not page.get("Truncated") or not marker:
                break
        with self._lock:
            self._versions = dict(versions)
        return _State(current, versions, rotating)

    def _describe(self, key: str) -> dict[str, Any] | None:
        """The key's metadata, or None when KMS has no such key (deleted)."""
        try:
            return dict(self._call("describe_key", KeyId=key)["KeyMetadata"])
        except _RefusedError as exc:
            if exc.code == "NotFoundException":
                return None
            raise _unexpected("DescribeKey", exc) from exc

    def _enabled(self, key: str) -> bool:
        meta = self._describe(key)
        return meta is not None and meta.get("KeyState") == "Enabled"

    def _context(self, version: int, context: bytes) -> dict[str, str]:
        """The KMS encryption context: this KEK, this version, the artifact's bound context."""
        return {
            "ghaf:kek": self.name,
            "ghaf:kek_version": str(version),
            "ghaf:context_sha256": hashlib.sha256(context).hexdigest(),
        }

    # What wraps and unwraps ------------------------------------------------------------

    def _current(self) -> tuple[int, str]:
        """The current version and its key, asked of KMS on every call: a rotation by
        another process is followed at once."""
        meta = self._describe(self.alias)
        if meta is None:
            raise ConfigError(
                f"KMS has no alias {self.alias}",
                hint="run `ghaf init` (it creates the key and alias), or create the alias "
                "for an existing symmetric key",
            )
        key = str(meta["KeyId"])
        version = self._version_by_key(key)
        if version is None:
            raise ConfigError(
                f"KMS alias {self.alias} points at key {key}, which is no version of this KEK",
                hint="run `ghaf keys rotate`: it adopts that key as the next version and "
                "re-wraps every artifact with it",
            )
        if meta.get("KeyState") != "Enabled":
            raise ConfigError(
                f"the current KEK version {version} (KMS key {key}) is {meta.get('KeyState')}",
                hint="enable the key in KMS, or point the alias back at a live version",
            )
        return version, key

    def _version_by_key(self, key: str) -> int | None:
        with self._lock:
            found = next((v for v, k in self._versions.items() if k == key), None)
        return found if found is not None else self._state().version_of(key)

    def _key_of(self, version: int) -> str:
        with self._lock:
            key = self._versions.get(version)
        if key is None:
            state = self._state()
            key = state.versions.get(version)
            if key is None:
                if state.versions and version < max(state.versions):
                    raise self._shredded(version, "KMS deleted its key")
                raise NotFoundError(
                    f"KEK {self.key_id} has no version {version}",
                    hint=f"keys.kms_key_id ({self.alias}) is not the KEK these artifacts "
                    "were written with",
                )
        return key

    def _shredded(self, version: int, why: str) -> NotFoundError:
        return NotFoundError(
            f"KEK {self.key_id} version {version} was destroyed ({why}): "
            "data keys wrapped only by it are crypto-shredded",
            hint="nothing can decrypt it any more; re-create the artifact from its source",
        )

    def _usable(self, wrapped: WrappedKey) -> str:
        """The KMS key of ``wrapped``'s version, refused unless it is enabled."""
        if wrapped.key_id != self.key_id:
            raise NotFoundError(
                f"artifact key is wrapped by KEK {wrapped.key_id}, this home has {self.key_id}",
                hint="point keys.kms_key_id at the alias the artifacts were written with",
            )
        key = self._key_of(wrapped.version)
        meta = self._describe(key)
        state = None if meta is None else meta.get("KeyState")
        if state == "Enabled":
            return key
        if meta is None:
            raise self._shredded(wrapped.version, "KMS deleted its key")
        if state == "PendingDeletion":
            when = _day(meta.get("DeletionDate"))
            raise self._shredded(wrapped.version, f"KMS deletes key {key} on {when}")
        if state == "Disabled":
            raise NotFoundError(
                f"KEK {self.key_id} version {wrapped.version} (KMS key {key}) is disabled",
                hint="enable the key in KMS (EnableKey) to read what it wraps",
            )
        raise BackendUnavailableError(
            f"KEK {self.key_id} version {wrapped.version} (KMS key {key}) is {state}",
            hint="wait for KMS to make the key usable, or check it in the KMS console",
        )

    def current_version(self) -> int:
        return self._current()[0]

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        version, key = self._current()
        try:
            answer = self._call(
                "encrypt",
                KeyId=key,
                Plaintext=data_key,
                EncryptionContext=self._context(version, context),
            )
        except _RefusedError as exc:
            raise _unexpected("Encrypt", exc) from exc
        return WrappedKey(self.key_id, version, bytes(answer["CiphertextBlob"]))

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        key = self._usable(wrapped)
        try:
            answer = self._call(
                "decrypt",
                CiphertextBlob=wrapped.blob,
                KeyId=key,
                EncryptionContext=self._context(wrapped.version, context),
            )
        except _RefusedError as exc:
            raise self._refused_unwrap(wrapped, exc) from exc
        return bytes(answer["Plaintext"])

    def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        """``ReEncrypt`` from ``wrapped``'s version to the current one: the data key
        never leaves KMS."""
        source = self._usable(wrapped)
        version, key = self._current()
        try:
            answer = self._call(
                "re_encrypt",
                CiphertextBlob=wrapped.blob,
                SourceKeyId=source,
                SourceEncryptionContext=self._context(wrapped.version, context),
                DestinationKeyId=key,
                DestinationEncryptionContext=self._context(version, context),
            )
        except _RefusedError as exc:
            raise self._refused_unwrap(wrapped, exc) from exc
        return WrappedKey(self.key_id, version, bytes(answer["CiphertextBlob"]))

    def _refused_unwrap(self, wrapped: WrappedKey, exc: _RefusedError) -> GhafError:
        if exc.code in ("InvalidCiphertextException", "IncorrectKeyException"):
            return IntegrityError(
                f"wrapped data key does not verify under KEK {self.key_id} "
                f"version {wrapped.version} (header or its context was altered)",
                hint="the artifact's header was tampered with; restore it from a replica",
            )
        if exc.code == "AccessDeniedException":
            # The version's key was just described: a blob naming another key (or an
            # altered one naming none) is what KMS denies here.
            return IntegrityError(
                f"wrapped data key does not verify under KEK {self.key_id} version "
                f"{wrapped.version}: KMS denied it (the wrapped key names another KMS key)",
                hint="restore the header from a replica; if every artifact fails, allow the "
                "control plane kms:Decrypt and kms:ReEncrypt* on the KEK's keys",
            )
        if exc.code in ("DisabledException", "KMSInvalidStateException", "NotFoundException"):
            return self._shredded(wrapped.version, f"KMS refused its key: {exc.message}")
        return _unexpected("Decrypt", exc)

    # Versions: create, rotate, destroy -------------------------------------------------

    def versions(self) -> dict[int, str]:
        """Every version ever made: ``"live"``, ``"destroyed (...)"`` or ``"disabled ..."``."""
        state = self._state()
        found: dict[int, str] = {}
        for version in range(1, max(state.versions, default=0) + 1):
            key = state.versions.get(version)
            meta = None if key is None else self._describe(key)
            status = None if meta is None else meta.get("KeyState")
            if meta is None:
                found[version] = "destroyed (KMS deleted its key)"
            elif status == "Enabled":
                found[version] = "live"
            elif status == "PendingDeletion":
                when = _day(meta.get("DeletionDate"))
                found[version] = f"destroyed (KMS deletes key {key} on {when})"
            else:
                found[version] = f"{str(status).lower()} in KMS (key {key})"
        return found

    def rotation_pending(self) -> int | None:
        """The version an unfinished rotation was re-wrapping to, if any."""
        state = self._state()
        return state.version_of(state.rotating) if state.rotating is not None else None

    def create(self) -> bool:
        """Make version 1 (a new KMS key) and the alias, or adopt the key the alias already
        names as version 1; True if anything was made. Idempotent, and finishes a
        creation that was interrupted."""
        state = self._state()
        if state.current is None:
            if state.versions:  # interrupted after the version's alias: point at it
                self._alias("create_alias", self.alias, state.versions[max(state.versions)])
                return True
            key = self._new_key(1)
            self._alias("create_alias", f"{self.alias}/v1", key)
            self._alias("create_alias", self.alias, key)
            return True
        if not state.versions:  # an alias made outside Ghaf (e.g. Terraform): adopt its key
            self._alias("create_alias", f"{self.alias}/v1", state.current)
            return True
        return False

    def begin_rotation(self) -> int:
        """Make a new version (a new KMS key, or the key an operator pointed the alias
        at) current, or return the one an unfinished rotation made."""
        for _attempt in range(5):
            state = self._state()
            if state.rotating is not None:
                version = state.version_of(state.rotating)
                if version is None:
                    raise ConfigError(
                        f"KMS alias {self.alias}/rotating names no version of this KEK",
                        hint=f"delete the alias {self.alias}/rotating and rotate again",
                    )
                if state.current != state.rotating:
                    self._alias("update_alias", self.alias, state.rotating)
                return version
            if state.current is None:
                raise ConfigError(
                    f"KMS has no alias {self.alias}", hint="run `ghaf init` to create the KEK"
                )
            current = state.version_of(state.current)
            top = max(state.versions, default=0)
            if current is None:  # the operator moved the alias to a key of their own
                version, key = top + 1, state.current
                if not self._alias("create_alias", f"{self.alias}/v{version}", key):
                    continue
            elif top > current and self._enabled(state.versions[top]):
                version, key = top, state.versions[top]  # an interrupted rotation made it
            else:
                version, key = top + 1, self._new_key(top + 1)
                if not self._alias("create_alias", f"{self.alias}/v{version}", key):
                    self._retire(key)  # another rotation took the number; never used
                    continue
            if not self._alias("create_alias", f"{self.alias}/rotating", key):
                continue
            self._alias("update_alias", self.alias, key)
            return version
        raise BackendUnavailableError(
            f"the KMS aliases of {self.alias} kept changing during the rotation",
            hint="another rotation is running; wait for it, then run `ghaf keys rotate`",
        )

    def finish_rotation(self) -> None:
        try:
            self._call("delete_alias", AliasName=f"{self.alias}/rotating")
        except _RefusedError as exc:
            if exc.code != "NotFoundException":
                raise _unexpected("DeleteAlias", exc) from exc

    def destroy_version(self, version: int) -> None:
        """Schedule the version's KMS key for deletion: refused from now on, deleted
        after ``deletion_window_days`` (crypto-shredding); the current one is refused."""
        state = self._state()
        key = state.versions.get(version)
        meta = None if key is None else self._describe(key)
        if key is None or meta is None or meta.get("KeyState") == "PendingDeletion":
            raise NotFoundError(
                f"KEK {self.key_id} has no live version {version}",
                hint="`ghaf keys list` shows the versions",
            )
        if key in (state.current, state.rotating):
            raise InvalidInputError(
                f"KEK version {version} is the current version",
                hint="run `ghaf keys rotate` first, then destroy the old version",
            )
        self._retire(key)

    # Helpers -------------------------------------------------------------------------

    def _new_key(self, version: int) -> str:
        try:
            meta = self._call(
                "create_key",
                Description=f"Ghaf key-encryption key {self.name}, version {version}",
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
                Tags=[
                    {"TagKey": "ghaf:kek", "TagValue": self.name},
                    {"TagKey": "ghaf:kek_version", "TagValue": str(version)},
                ],
            )["KeyMetadata"]
        except _RefusedError as exc:
            raise _unexpected("CreateKey", exc) from exc
        return str(meta["KeyId"])

    def _alias(self, operation: str, name: str, key: str) -> bool:
        """Create or update alias ``name``; False if creating found it taken."""
        try:
            self._call(operation, AliasName=name, TargetKeyId=key)
        except _RefusedError as exc:
            if exc.code == "AlreadyExistsException":
                return False
            raise _unexpected(_api_name(operation), exc) from exc
        return True

    def _retire(self, key: str) -> None:
        try:
            self._call("schedule_key_deletion", KeyId=key, PendingWindowInDays=self._window)
        except _RefusedError as exc:
            raise _unexpected("ScheduleKeyDeletion", exc) from exc


def _api_name(method: str) -> str:
    """KMS's name of a boto3 method: ``list_aliases`` -> ``ListAliases``."""
    return "".join(part.title() for part in method.split("_"))


def _unexpected(operation: str, exc: _RefusedError) -> GhafError:
    if exc.code == "AccessDeniedException":
        return ConfigError(
            f"KMS denied {operation}: {exc.message}",
            hint=f"allow the control plane's AWS identity {_PERMISSIONS} on the KEK's keys",
        )
    return BackendUnavailableError(
        f"KMS refused {operation}: {exc.code}: {exc.message}",
        hint="check the key and aliases in the KMS console",
    )


def _day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC).date().isoformat()
    return "the end of its deletion window"


def _botocore_errors() -> Any:
    try:
        return importlib.import_module("botocore.exceptions")
    except ImportError as exc:
        raise MissingDependencyError("boto3", "kms") from exc


def _make_client(region: str | None, endpoint_url: str | None) -> Any:
    try:
        boto3 = importlib.import_module("boto3")
        config = importlib.import_module("botocore.config")
    except ImportError as exc:
        raise MissingDependencyError("boto3", "kms") from exc
    errors = _botocore_errors()
    settings = config.Config(
        connect_timeout=5,
        read_timeout=20,
        retries={"max_attempts": 3, "mode": "standard"},
        user_agent_extra="ghaf",
    )
    global _SESSION
    try:
        with _SESSION_LOCK:  # one session (it caches the parsed API model); made under a lock
            if _SESSION is None:
                _SESSION = boto3.session.Session()
            return _SESSION.client(
                "kms", region_name=region, endpoint_url=endpoint_url, config=settings
            )
    except errors.NoRegionError as exc:
        raise ConfigError(
            "no AWS region for KMS",
            hint="set keys.kms_region (GHAF_KEYS__KMS_REGION), e.g. me-central-1",
        ) from exc
