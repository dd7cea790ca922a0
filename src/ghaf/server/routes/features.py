"""Features: definitions, materialization, historical retrieval (training sets)."""

from __future__ import annotations

from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["features"])
