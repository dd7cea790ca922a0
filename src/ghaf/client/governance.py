"""The remote client's governance calls: keys, code/release/gate policies, principals
and groups, break glass, audit checkpoints."""

from __future__ import annotations

from ghaf.client.session import Session


class GovernanceCalls(Session):
    """Governance calls of :class:`~ghaf.client.http.Client`."""
