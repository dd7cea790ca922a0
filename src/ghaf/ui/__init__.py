"""The web UI, served by ``ghaf server`` under ``/ui/``: pages that read through the same
services and checks as the API's read routes, and buttons that write through the API."""

from __future__ import annotations

from ghaf.ui.app import install

__all__ = ["install"]
