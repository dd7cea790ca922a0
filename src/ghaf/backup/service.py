"""Backup and restore of a home: metadata, artifacts, wrapped keys and audit checkpoints.

``create_backup`` reads the metadata in one snapshot transaction (SQLite WAL's read
transaction, PostgreSQL's REPEATABLE READ) while the home keeps taking writes, then
copies the artifacts: blobs are content addressed and immutable, and a row that names
one commits after it, so every artifact the snapshot refers to is in the store when the
copy lists it. Encrypted artifacts travel as they are stored (bodies and the headers
that hold their data keys wrapped by the KEK); the KEK never enters a backup. The audit
checkpoints the snapshot covers travel with it, and the manifest, signed by the home's
key (sealed under the KEK), lists the SHA-256 of every file.

``restore_backup`` checks all of that before it writes anything, into a fresh home (an
empty database and artifact store), then loads the rows in one governed transaction
that also audits the restore, and signs a checkpoint over the restored chain.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, delete, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ghaf.artifacts.base import CHUNK_SIZE, BlobStore
from ghaf.backends import open_blob_store, open_key_provider
from ghaf.backup import rows
from ghaf.backup.manifest import (
    FORMAT,
    MANIFEST,
    SEALED_KEY,
    SIGNATURE,
    FileEntry,
    canonical,
    check_signature,
    parse_manifest,
    public_pem,
    seal_signing_key,
    sign,
    unseal_signing_key,
)
from ghaf.errors import (
    AlreadyExistsError,
    ConfigError,
    GhafError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from ghaf.metadata.base import utcnow
from ghaf.metadata.engine import create_metadata_engine
from ghaf.metadata.migrate import alembic_config, upgrade
from ghaf.metadata.tables import load_all_tables
from ghaf.platform import Platform
from ghaf.security.audit_tables import AuditHeadRow
from ghaf.security.audit_verify import AuditReport
from ghaf.security.base import KeyProvider
from ghaf.security.checkpoints import COPY_PREFIX, checkpoints_path, read_log
from ghaf.security.homekeys import (
    fingerprint,
    load_signing_key,
    public_key_path,
    signing_key_path,
    trust_dir,
    trusted_keys,
)
from ghaf.security.identity import Actor, os_user
from ghaf.security.keys import LocalKeyProvider, write_private_file
from ghaf.settings import SETTINGS_FILE, GhafSettings
from ghaf.spine import current_operation, current_session, governed

ARTIFACT_PREFIXES = ("enc/", "hdr/", "sha256/")
"""The artifact store's content: encrypted bodies, their key headers, plain blobs."""
BLOBS = "blobs/"
"""Where a backup keeps the artifact store's blobs, under their own keys."""
ROWS_FILE = "metadata/tables.jsonl"
"""Every table's rows (:mod:`ghaf.backup.rows`), from one snapshot."""
HOME_FILES = "home/"
"""Files of the home directory that a restore puts back (public keys, checkpoint log)."""
_LOG = "audit/checkpoints.jsonl"
SEEDED = {"audit_head", "alembic_version"}
"""Tables a freshly migrated database already holds rows in."""


@dataclass(frozen=True)
class BackupResult:
    """What a backup holds: where, the snapshot's audit head, and how much of each."""

    id: str
    destination: str
    created_at: str
    audit_seq: int
    tables: dict[str, int]
    blobs: int
    artifacts: int
    checkpoints: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ArtifactCheck:
    """Every artifact of a home read back in full and verified against its digest."""

    checked: int
    failures: tuple[tuple[str, str], ...] = ()
    """(digest, why) of each artifact that did not verify."""

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class RestoreResult:
    """What a restore put back and what the restored home's checks found."""

    id: str
    source: str
    home: str
    audit_seq: int
    tables: dict[str, int]
    blobs: int
    audit: AuditReport
    artifacts: ArtifactCheck
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.audit.ok and self.artifacts.ok

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "home": self.home,
            "audit_seq": self.audit_seq,
            "tables": self.tables,
            "blobs": self.blobs,
            "audit": self.audit.to_json(),
            "artifacts": {
                "checked": self.artifacts.checked,
                "failures": [{"digest": d, "error": e} for d, e in self.artifacts.failures],
            },
            "ok": self.ok,
        }


# Where backups go ----------------------------------------------------------------------


def location_url(location: str) -> str:
    """A backup location as a blob-store URL: ``s3://bucket/prefix`` or a directory.

    Raises:
        InvalidInputError: another scheme, or an S3 URL without a bucket.
    """
    parsed = urlparse(location)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InvalidInputError(
                f"backup location {location!r} names no bucket", hint="use s3://BUCKET/PREFIX"
            )
        return location.rstrip("/")
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).resolve().as_uri()
    if parsed.scheme:
        raise InvalidInputError(
            f"backup location {location!r}: scheme {parsed.scheme!r} is not supported",
            hint="give a directory or s3://BUCKET/PREFIX (on the configured S3 endpoint)",
        )
    return Path(location).expanduser().resolve().as_uri()


def _open_location(settings: GhafSettings, url: str) -> BlobStore:
    # The artifacts' region: a backup stays where the data may live (an S3 bucket
    # elsewhere is refused by the store's own location check).
    return open_blob_store(
        url, region=settings.artifact_region, endpoint_url=settings.s3_endpoint_url
    )


def new_backup_id(now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-<random>``: sorts by time, never repeats."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(4)}"


class _Writer:
    """Writes the files of one backup, keeping the SHA-256 and size of each."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.files: dict[str, FileEntry] = {}

    def put(self, key: str, chunks: Iterable[bytes | memoryview]) -> FileEntry:
        writer = self.store.begin_write()
        hasher = hashlib.sha256()
        size = 0
        pending = bytearray()
        try:
            for chunk in chunks:
                hasher.update(chunk)
                size += len(chunk)
                pending += chunk
                if len(pending) >= CHUNK_SIZE:
                    writer.write(bytes(pending))
                    pending = bytearray()
            if pending:
                writer.write(bytes(pending))
            writer.commit(key)
        except BaseException:
            writer.abort()
            raise
        entry = FileEntry(hasher.hexdigest(), size)
        self.files[key] = entry
        return entry


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_SIZE):
        yield chunk


# Backup ----------------------------------------------------------------------------


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees the database at one point in time."""
    connection = engine.connect()
    if connection.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
    try:
        with connection.begin():
            yield connection  # SQLite (WAL): the first read fixes the snapshot
    finally:
        connection.close()


def _key_description(settings: GhafSettings, keys: KeyProvider) -> dict[str, Any]:
    if settings.keys.provider == "kms":
        provider = "kms"
    elif settings.security.kek is not None:
        provider = "static"
    else:
        provider = "local"
    return {"provider": provider, "key_id": keys.key_id, "current_version": keys.current_version()}


@governed("backup.create", resource="backup:{destination}", project="*")
def create_backup(platform: Platform, actor: Actor, destination: str) -> BackupResult:
    """Back the home up to ``destination`` (a new directory or ``s3://`` prefix).

    The home keeps taking writes meanwhile: the metadata is one snapshot, and the
    backup holds every artifact and checkpoint that snapshot refers to.

    Raises:
        AlreadyExistsError: the destination already holds files.
        InvalidInputError: the destination is not a directory or ``s3://`` URL.
    """
    settings = platform.settings
    url = location_url(destination)
    out = _Writer(_open_location(settings, url))
    if next(iter(out.store.keys("")), None) is not None:
        raise AlreadyExistsError(
            f"backup destination {url} is not empty",
            hint="back up to a new directory or prefix (each backup is complete on its own)",
        )
    backup_id = new_backup_id()
    created_at = utcnow().isoformat()
    keys = open_key_provider(settings)
    signing = load_signing_key(settings)
    public = public_pem(signing)
    public_fp = fingerprint(public)
    metadata, seq = _dump_metadata(platform, out)
    checkpoints = _copy_checkpoint_log(settings, out, seq)
    blobs, digests = _copy_blobs(platform, out, seq)
    out.put(f"{HOME_FILES}keys/signing.pub.pem", [public])
    for path in trusted_keys(settings):
        out.put(f"{HOME_FILES}keys/trusted/{path.name}", [path.read_bytes()])
    private = signing_key_path(settings).read_bytes()
    out.put(SEALED_KEY, [seal_signing_key(keys, private, backup_id, public_fp)])
    manifest = {
        "format": FORMAT,
        "id": backup_id,
        "created_at": created_at,
        "home": {
            "home_id": metadata.pop("home_id"),
            "owner": metadata.pop("owner"),
            "project": settings.project,
        },
        "metadata": metadata,
        "artifacts": {
            "region": settings.artifact_region,
            "encrypted": settings.security.encrypt_artifacts,
            "blobs": blobs,
            "artifacts": digests,
        },
        "checkpoints": checkpoints,
        "kek": _key_description(settings, keys),
        "signing": {"public_key": public_fp},
        "files": {key: asdict(entry) for key, entry in sorted(out.files.items())},
    }
    body = canonical(manifest)
    out.put(MANIFEST, [body])
    out.put(SIGNATURE, [sign(signing, body)])  # last: a backup without it is incomplete
    result = BackupResult(
        id=backup_id,
        destination=url,
        created_at=created_at,
        audit_seq=seq,
        tables=metadata["tables"],
        blobs=blobs,
        artifacts=digests,
        checkpoints=checkpoints["lines"],
        bytes=sum(entry.size for entry in out.files.values()),
    )
    current_operation().details.update(
        id=backup_id, audit_seq=seq, blobs=blobs, artifacts=digests, bytes=result.bytes
    )
    return result


def _dump_metadata(platform: Platform, out: _Writer) -> tuple[dict[str, Any], int]:
    metadata = load_all_tables().metadata
    with _snapshot(platform.engine) as connection:
        present = set(inspect(connection).get_table_names()) - {"alembic_version"}
        known = set(metadata.tables)
        if present != known:
            missing, extra = sorted(known - present), sorted(present - known)
            raise ConfigError(
                f"the metadata store's tables differ from this Ghaf's: missing {missing}, "
                f"unknown {extra}",
                hint="run `ghaf init` (it migrates) with the Ghaf version that runs the home",
            )
        heads = sorted(MigrationContext.configure(connection).get_current_heads())
        head = connection.execute(select(AuditHeadRow.seq, AuditHeadRow.record_hash)).one()
        info = connection.execute(
            select(metadata.tables["home_info"].c.home_id, metadata.tables["home_info"].c.owner)
        ).first()
        counts: dict[str, int] = {}
        out.put(ROWS_FILE, _dump_all(connection, metadata.sorted_tables, counts))
    return {
        "dialect": platform.engine.dialect.name,
        "schema_heads": heads,
        "audit_seq": int(head.seq),
        "audit_head": head.record_hash,
        "tables": counts,
        "home_id": info.home_id if info else None,
        "owner": info.owner if info else None,
    }, int(head.seq)


def _dump_all(
    connection: Connection, tables: Iterable[Table], counts: dict[str, int]
) -> Iterator[bytes]:
    """Every table's lines, one after the other; ``counts`` gets each table's rows."""
    for table in tables:
        name = str(table.name)
        counts[name] = -1  # less the header line
        for line in rows.dump_table(connection, table):
            counts[name] += 1
            yield line


def _copy_checkpoint_log(settings: GhafSettings, out: _Writer, seq: int) -> dict[str, Any]:
    """The checkpoint log's lines that the snapshot covers (sizes only grow: a prefix)."""
    lines = [
        stored.line
        for stored in read_log(settings) or []
        if stored.checkpoint is not None and stored.checkpoint.size <= seq
    ]
    out.put(f"{HOME_FILES}{_LOG}", [b"".join(lines)])
    return {"lines": len(lines)}


def _copy_blobs(platform: Platform, out: _Writer, seq: int) -> tuple[int, int]:
    """Copy the artifact store's content and the checkpoint copies the snapshot covers.

    Listed after the snapshot, so everything it refers to is listed. A key rotation
    running meanwhile replaces headers (the new one is written before the old one goes):
    a header gone by the time it is read is skipped, and an artifact left with none is
    listed again.
    """
    blobs: BlobStore = platform.artifacts.blobs  # type: ignore[attr-defined]
    copied = 0
    found: dict[str, set[str]] = {prefix: set() for prefix in ARTIFACT_PREFIXES}
    for prefix in ARTIFACT_PREFIXES:
        for key in list(blobs.keys(prefix)):
            if _copy_blob(blobs, out, key):
                copied += 1
                found[prefix].add(key.split("/")[2])
    for digest in sorted(found["enc/"] - found["hdr/"]):  # its header moved meanwhile
        for key in list(blobs.keys(f"hdr/{digest[:2]}/{digest}/")):
            if _copy_blob(blobs, out, key):
                copied += 1
                found["hdr/"].add(digest)
    for key in sorted(blobs.keys(COPY_PREFIX)):
        size = int(key.removeprefix(COPY_PREFIX).split("-", 1)[0])
        if size <= seq:
            copied += _copy_blob(blobs, out, key)
    return copied, len(found["hdr/"] | found["sha256/"])


def _copy_blob(blobs: BlobStore, out: _Writer, key: str) -> bool:
    try:
        with blobs.open_read(key) as handle:
            out.put(BLOBS + key, _read_chunks(handle))
    except NotFoundError:
        return False
    return True


# Restore ---------------------------------------------------------------------------


@dataclass
class _Source:
    store: BlobStore
    url: str
    manifest: dict[str, Any]

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest["files"])

    def read(self, key: str) -> bytes:
        with self.store.open_read(key) as handle:
            return handle.read()

    def chunks(self, key: str) -> Iterator[bytes]:
        with self.store.open_read(key) as handle:
            yield from _read_chunks(handle)


def open_backup(settings: GhafSettings, source: str) -> _Source:
    """The backup at ``source`` and its manifest (not verified yet).

    Raises:
        IntegrityError: no manifest or signature there (not a backup, or an unfinished one).
    """
    url = location_url(source)
    store = _open_location(settings, url)
    try:
        raw = store.open_read(MANIFEST)
        with raw as handle:
            manifest = parse_manifest(handle.read())
        if not store.exists(SIGNATURE):
            raise NotFoundError(SIGNATURE)
    except NotFoundError as exc:
        raise IntegrityError(
            f"{url} holds no complete backup ({MANIFEST} and {SIGNATURE} are written last)",
            hint="point at the folder or s3:// prefix `ghaf backup` finished writing",
        ) from exc
    return _Source(store, url, manifest)


def _restore_keys(
    settings: GhafSettings, manifest: dict[str, Any], kek_file: Path | None
) -> KeyProvider:
    """The KEK the restored home will use, checked to be the backup's."""
    kek = manifest["kek"]
    if kek["provider"] == "local":
        path = kek_file or settings.kek_path
        if not path.is_file():
            raise ConfigError(
                f"the backup's artifacts are wrapped by the key file KEK {kek['key_id']}, "
                "and backups never hold a KEK",
                hint="pass --kek-file PATH: the home's keys/kek.json, kept apart from its "
                "backups (or set security.kek_file)",
            )
        keys: KeyProvider = LocalKeyProvider(path)
    else:
        keys = open_key_provider(settings)
    if keys.key_id != kek["key_id"]:
        raise ConfigError(
            f"the KEK given is {keys.key_id}, the backup was made under KEK {kek['key_id']} "
            f"({kek['provider']})",
            hint="restore with the KEK of the home that made the backup",
        )
    return keys


def _check_target(settings: GhafSettings, manifest: dict[str, Any]) -> None:
    """Refuse a target that is not fresh, or that the backup cannot be restored into."""
    home = settings.home
    if home.exists():
        extra = sorted(p.name for p in home.iterdir() if p.name != SETTINGS_FILE)
        if extra:
            raise AlreadyExistsError(
                f"the home {home} is not empty ({', '.join(extra[:5])}): a restore makes a "
                "fresh home",
                hint="restore into a new --home (it may hold only its ghaf.toml)",
            )
    if settings.asserted_identity:
        raise PermissionDeniedError(
            f"identity cannot be set: {', '.join(settings.asserted_identity)} was refused",
            hint="unset it; a restore acts as the OS account that owns the backed-up home",
        )
    owner = manifest["home"]["owner"]
    name, _ = os_user()
    if owner is not None and owner != name:
        raise PermissionDeniedError(
            f"the backed-up home belongs to {owner}; this is {name}",
            hint=f"run the restore as {owner} (then `ghaf admin transfer` hands it over)",
        )
    region = manifest["artifacts"]["region"]
    if settings.artifact_region != region:
        raise ConfigError(
            f"the backup's artifacts are in region {region}, the target's artifact_region "
            f"is {settings.artifact_region}",
            hint=f"set artifact_region = {region!r} for the new home (encrypted artifacts "
            "are bound to their region)",
        )
    # Alembic stores the tips of the applied graph; compare what lies below them.
    script = ScriptDirectory.from_config(alembic_config())
    heads = list(manifest["metadata"]["schema_heads"])
    try:
        theirs = {rev.revision for rev in script.iterate_revisions(tuple(heads), "base") if rev}
    except Exception:  # noqa: BLE001 - a revision this Ghaf does not know
        theirs = set(heads)
    ours = {rev.revision for rev in script.walk_revisions()}
    if ours != theirs:
        raise ConfigError(
            f"the backup's schema differs from this Ghaf's (only in the backup: "
            f"{sorted(theirs - ours)}; only here: {sorted(ours - theirs)})",
            hint="restore with the Ghaf version that made the backup, then upgrade it",
        )


def _check_empty_database(engine: Engine) -> None:
    with engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
        tables = load_all_tables().metadata.tables
        busy = [
            name
            for name in sorted(present & set(tables))
            if name not in SEEDED and rows.count_rows(connection, tables[name])
        ]
        if "audit_head" in present:
            head = connection.execute(select(AuditHeadRow.seq)).scalar_one_or_none()
            if head:
                busy.append("audit_head")
        connection.rollback()
    if busy:
        url = engine.url.render_as_string(hide_password=True)
        raise AlreadyExistsError(
            f"the metadata store {url} is not empty (rows in {', '.join(busy[:5])})",
            hint="restore into a new, empty database (metadata_url)",
        )


def _check_empty_store(store: BlobStore) -> None:
    for prefix in (*ARTIFACT_PREFIXES, COPY_PREFIX):
        found = next(iter(store.keys(prefix)), None)
        if found is not None:
            raise AlreadyExistsError(
                f"the artifact store {store.url} is not empty ({found})",
                hint="restore into a new, empty artifact_url",
            )


def verify_files(source: _Source) -> int:
    """Hash every file of the backup against the manifest; returns how many.

    Raises:
        IntegrityError: naming the first file that is missing or does not match.
    """
    for key, entry in sorted(source.files.items()):
        hasher = hashlib.sha256()
        size = 0
        try:
            for chunk in source.chunks(key):
                hasher.update(chunk)
                size += len(chunk)
        except NotFoundError as exc:
            raise IntegrityError(
                f"backup file {key} is missing from {source.url}",
                hint="the backup is damaged; restore from another backup",
            ) from exc
        if hasher.hexdigest() != entry["sha256"] or size != entry["size"]:
            raise IntegrityError(
                f"backup file {key} does not match the manifest (sha256 {hasher.hexdigest()}, "
                f"{size} bytes; the manifest says {entry['sha256']}, {entry['size']} bytes)",
                hint="the backup is damaged; restore from another backup",
            )
    return len(source.files)


def restore_backup(
    settings: GhafSettings, source: str, *, kek_file: Path | None = None
) -> RestoreResult:
    """Restore the backup at ``source`` into the fresh home ``settings`` describe.

    Everything is checked before anything is written: the target (an empty home,
    database and artifact store, the backup's region and schema, its owner's OS
    account), the KEK (the backup's), the manifest's signature and every file's SHA-256.

    Args:
        settings: the new home (its ``metadata_url``, ``artifact_url``, keys...).
        source: the backup's directory or ``s3://`` prefix.
        kek_file: the backed-up home's key file, when its KEK is one (copied in).

    Raises:
        IntegrityError: the backup is incomplete, altered or corrupt (the file named).
        AlreadyExistsError: the target is not fresh.
        ConfigError: the KEK, region or schema does not fit the backup.
    """
    found = open_backup(settings, source)
    manifest = found.manifest
    _check_target(settings, manifest)
    keys = _restore_keys(settings, manifest, kek_file)
    signing = unseal_signing_key(
        keys, found.read(SEALED_KEY), manifest["id"], manifest["signing"]["public_key"]
    )
    check_signature(signing, found.read(MANIFEST), found.read(SIGNATURE))
    verify_files(found)
    database = make_url(settings.resolved_metadata_url).database
    if not settings.resolved_metadata_url.startswith("sqlite") or (
        database and Path(database).exists()
    ):
        engine = create_metadata_engine(settings.resolved_metadata_url)
        try:
            _check_empty_database(engine)
        finally:
            engine.dispose()
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = open_blob_store(
        settings.resolved_artifact_url,
        region=settings.artifact_region,
        endpoint_url=settings.s3_endpoint_url,
    )
    _check_empty_store(store)
    _restore_home_files(settings, found, signing, kek_file)
    blobs = 0
    for key in sorted(k for k in found.files if k.startswith(BLOBS)):
        writer = store.begin_write()
        hasher = hashlib.sha256()
        try:
            for chunk in found.chunks(key):
                hasher.update(chunk)
                writer.write(chunk)
            if hasher.hexdigest() != found.files[key]["sha256"]:  # changed since verified
                raise IntegrityError(
                    f"backup file {key} changed while it was restored",
                    hint="restore again from a backup nothing writes to",
                )
            writer.commit(key.removeprefix(BLOBS))
        except BaseException:
            writer.abort()
            raise
        blobs += 1
    with Platform(settings) as platform:
        upgrade(platform.engine)
        counts = _load_metadata(platform, platform.admin(), found.url, found)
        platform.checkpointer.checkpoint(backfill=True)
        from ghaf.access.audit import verify_trail

        report = verify_trail(platform)
        artifacts = verify_artifacts(platform)
    return RestoreResult(
        id=manifest["id"],
        source=found.url,
        home=str(settings.home),
        audit_seq=int(manifest["metadata"]["audit_seq"]),
        tables=counts,
        blobs=blobs,
        audit=report,
        artifacts=artifacts,
    )


def _restore_home_files(
    settings: GhafSettings, found: _Source, signing: Any, kek_file: Path | None
) -> None:
    from cryptography.hazmat.primitives import serialization

    if kek_file is not None:
        write_private_file(settings.kek_path, kek_file.read_bytes())
    private = signing.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(signing_key_path(settings), private)
    for key in sorted(found.files):
        if not key.startswith(HOME_FILES):
            continue
        relative = key.removeprefix(HOME_FILES)
        if relative == _LOG:
            write_private_file(checkpoints_path(settings), found.read(key))
        elif relative == "keys/signing.pub.pem":
            public_key_path(settings).write_bytes(found.read(key))
        elif relative.startswith("keys/trusted/") and "/" not in relative.removeprefix(
            "keys/trusted/"
        ):
            folder = trust_dir(settings)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            (folder / relative.removeprefix("keys/trusted/")).write_bytes(found.read(key))


@governed("backup.restore", resource="backup:{source}", project="*")
def _load_metadata(platform: Platform, actor: Actor, source: str, found: _Source) -> dict[str, int]:
    """Load every table of the backup into the new home's empty database, in one
    transaction with the record of this restore (the first after the restored chain)."""
    session: Session = current_session()
    metadata = load_all_tables().metadata
    session.execute(delete(metadata.tables["audit_head"]))  # the genesis head of an empty store
    if ROWS_FILE not in found.files:
        raise IntegrityError(f"the backup has no {ROWS_FILE}", hint="restore from another backup")
    tables = metadata.sorted_tables
    counts = rows.load_tables(session, tables, _lines_of(found, ROWS_FILE), ROWS_FILE)
    rows.reset_sequences(session, metadata.sorted_tables)
    current_operation().details.update(
        id=found.manifest["id"], audit_seq=found.manifest["metadata"]["audit_seq"]
    )
    return counts


def _lines_of(found: _Source, key: str) -> Iterator[bytes]:
    rest = b""
    for chunk in found.chunks(key):
        rest += chunk
        *complete, rest = rest.split(b"\n")
        yield from (line for line in complete if line)
    if rest:
        yield rest


def verify_artifacts(platform: Platform) -> ArtifactCheck:
    """Read every artifact of the home back in full, checking it against its digest (and,
    encrypted, that its data key unwraps and every chunk authenticates)."""
    checked = 0
    failures = []
    for digest in platform.artifacts.digests():
        checked += 1
        try:
            with platform.artifacts.open(digest) as handle:
                while handle.read(CHUNK_SIZE):
                    pass
        except GhafError as exc:
            failures.append((digest, exc.headline))
    return ArtifactCheck(checked, tuple(failures))
