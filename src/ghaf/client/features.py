"""The remote client's feature calls: definitions, materialization, historical
retrieval (training sets)."""

from __future__ import annotations

from ghaf.client.session import Session


class FeatureCalls(Session):
    """Features calls of :class:`~ghaf.client.http.Client`."""
