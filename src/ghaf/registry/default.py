"""``ghaf.load_model``: verify and load a registered model with the default platform."""

from __future__ import annotations

from typing import Any

from ghaf.platform import Platform
from ghaf.registry.download import load_model as load_registered
from ghaf.tracking.default import default_platform


def load_model(ref: str, platform: Platform | None = None) -> Any:
    """Verify and load a registered model, e.g. ``load_model("fraud@champion")``.

    Without ``platform``, the default platform built from the settings is used.
    """
    return load_registered(platform or default_platform(), ref)
