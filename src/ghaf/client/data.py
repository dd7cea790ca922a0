"""The remote client's data calls: ingest (a URL or an upload), versions, validation,
diffs, lineage and OpenLineage."""

from __future__ import annotations

from ghaf.client.session import Session


class DataCalls(Session):
    """Data calls of :class:`~ghaf.client.http.Client`."""
