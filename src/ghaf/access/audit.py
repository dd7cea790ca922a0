"""Governed audit operations: an on-demand signed checkpoint."""

from __future__ import annotations

from ghaf.platform import Platform
from ghaf.security.checkpoints import Checkpoint, Checkpointer
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, governed


@governed("audit.checkpoint", resource="audit:checkpoints")
def create_checkpoint(platform: Platform, actor: Actor) -> Checkpoint:
    """Sign a checkpoint over every record committed so far and append it to the file.

    The record of this operation itself is covered by the next checkpoint.
    """
    checkpointer = platform.audit.checkpoints
    if not isinstance(checkpointer, Checkpointer):
        checkpointer = Checkpointer(platform.settings, platform.engine)
    checkpoint = checkpointer.checkpoint()
    current_operation().details.update(size=checkpoint.size, root=checkpoint.root)
    return checkpoint
