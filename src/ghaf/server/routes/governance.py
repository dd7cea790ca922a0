"""Governance: keys, code/release/gate policies, principals and groups, break glass,
audit checkpoints."""

from __future__ import annotations

from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["governance"])
