"""Models: flavors that save and load each kind of model safely, and ``load_model``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ghaf.models.base import LoadedModel
from ghaf.models.flavors import FLAVORS, load_model_dir, save_model

if TYPE_CHECKING:
    from ghaf.platform import Platform


def load_model(ref: str, platform: Platform | None = None) -> Any:
    """Verify and load a registered model, e.g. ``load_model("fraud@champion")``.

    Without ``platform``, the default platform built from the settings is used.
    """
    from ghaf.registry import load_model as load_registered
    from ghaf.tracking.default import default_platform

    return load_registered(platform or default_platform(), ref)


__all__ = ["FLAVORS", "LoadedModel", "load_model", "load_model_dir", "save_model"]
