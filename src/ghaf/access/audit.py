"""Governed audit operations: an on-demand signed checkpoint, and verifying the trail."""

from __future__ import annotations

from ghaf.platform import Platform
from ghaf.security.audit_verify import AuditReport, verify_audit
from ghaf.security.checkpoints import Checkpoint
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, governed


@governed("audit.checkpoint", resource="audit:checkpoints")
def create_checkpoint(platform: Platform, actor: Actor) -> Checkpoint:
    """Sign a checkpoint over every record committed so far; store it in the log and its copy.

    Older checkpoints without a copy (a home from before copies existed) are copied too.
    The record of this operation itself is covered when the platform closes.
    """
    checkpoint = platform.checkpointer.checkpoint(backfill=True)
    current_operation().details.update(size=checkpoint.size, root=checkpoint.root)
    return checkpoint


def verify_trail(platform: Platform) -> AuditReport:
    """Verify the chain against the checkpoint log and its copies in the artifact store."""
    with platform.read_session() as session:
        return verify_audit(platform.settings, session, copies=platform.checkpointer.copy_store())
