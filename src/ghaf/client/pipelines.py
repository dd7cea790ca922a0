"""The remote client's calls for pipelines: submit, status, logs, cancel, triggers."""

from __future__ import annotations

from ghaf.client.session import Session


class PipelineCalls(Session):
    """Pipelines calls of :class:`~ghaf.client.http.Client`."""
