"""Pipelines: submit, status, logs, cancel, triggers."""

from __future__ import annotations

from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["pipelines"])
