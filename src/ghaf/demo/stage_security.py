"""Demo stage: artifacts are ciphertext at rest; the audit chain and a signed checkpoint verify."""

from __future__ import annotations

from ghaf.access.audit import create_checkpoint, verify_trail
from ghaf.demo.runner import DemoContext
from ghaf.errors import IntegrityError
from ghaf.security.encrypted_store import EncryptedArtifactStore


def show_security(ctx: DemoContext) -> str:
    """Check a stored raw file's bytes never appear on disk, then checkpoint and verify audit."""
    platform = ctx.platform
    store = platform.artifacts
    parts = []
    if isinstance(store, EncryptedArtifactStore):
        paths = ctx.results.get("bank_paths", {})
        source = next(iter(paths.values()), None) if paths else None
        if source is not None:
            info = store.put(source)
            sample = source.read_bytes()[1000:1064]
            on_disk = list(store.blobs.keys(f"enc/{info.digest[:2]}/{info.digest}/"))
            leaked = False
            for key in on_disk:  # the raw bytes as the backend holds them
                with store.blobs.open_read(key) as raw:
                    leaked = leaked or sample in raw.read()
            if leaked or store.read_bytes(info.digest)[1000:1064] != sample:
                raise IntegrityError("a stored artifact's plaintext is visible at rest")
            kek = store.keys.key_id
            parts.append(
                f"{len(list(store.digests()))} artifacts AES-256-GCM encrypted at rest "
                f"(KEK {kek} v{store.keys.current_version()}, {len(on_disk)} blobs checked)"
            )
    checkpoint = create_checkpoint(platform, platform.admin())
    report = verify_trail(platform)
    if not report.ok:
        raise IntegrityError(report.headline)
    parts.append(
        f"signed checkpoint at {checkpoint.size} records (root {checkpoint.root[:12]}); "
        f"{report.checkpoints} checkpoints verify"
    )
    ctx.results["audit_checkpoint"] = checkpoint
    return "; ".join(parts)
