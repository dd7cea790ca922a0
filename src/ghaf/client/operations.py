"""The remote client's calls for deployments, monitoring profiles and prediction exports."""

from __future__ import annotations

from ghaf.client.session import Session


class OperationsCalls(Session):
    """Deployment, monitoring and export calls of :class:`~ghaf.client.http.Client`."""
