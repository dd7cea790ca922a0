"""Deployments, monitoring profiles and prediction exports."""

from __future__ import annotations

from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["operations"])
