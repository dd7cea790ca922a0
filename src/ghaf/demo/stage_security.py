"""Demo stage: artifacts are ciphertext at rest; the audit chain and a signed checkpoint verify."""

from __future__ import annotations

from ghaf.access.audit import create_checkpoint, verify_trail
from ghaf.demo.runner import DemoEnv
from ghaf.demo.state import Generated, StoredFiles
from ghaf.errors import IntegrityError
from ghaf.security.encrypted_store import EncryptedArtifactStore


def show_security(env: DemoEnv, generated: Generated, stored: StoredFiles) -> str:
    """Check a stored raw file's bytes never appear on disk, then checkpoint and verify audit."""
    platform = env.platform
    store = platform.artifacts
    parts = []
    if isinstance(store, EncryptedArtifactStore):
        name, digest = next(iter(stored.digests.items()))
        sample = generated.paths[name].read_bytes()[1000:1064]
        on_disk = list(store.blobs.keys(f"enc/{digest[:2]}/{digest}/"))
        leaked = False
        for key in on_disk:  # the raw bytes as the backend holds them
            with store.blobs.open_read(key) as raw:
                leaked = leaked or sample in raw.read()
        if leaked or store.read_bytes(digest)[1000:1064] != sample:
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
    return "; ".join(parts)
