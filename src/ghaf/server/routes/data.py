"""Data: ingest (from a URL or an upload), versions, validation, diffs, lineage and OpenLineage."""

from __future__ import annotations

from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["data"])
