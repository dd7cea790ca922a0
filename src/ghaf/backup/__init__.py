"""Backup and restore of a home: metadata, artifacts, wrapped keys and audit checkpoints."""

from ghaf.backup.service import (
    ArtifactCheck,
    BackupResult,
    RestoreResult,
    create_backup,
    restore_backup,
    verify_artifacts,
)

__all__ = [
    "ArtifactCheck",
    "BackupResult",
    "RestoreResult",
    "create_backup",
    "restore_backup",
    "verify_artifacts",
]
