"""Models: flavors that save and load each kind of model safely.

``ghaf.load_model`` (a registered model by reference) lives in the registry, above this
package: flavors know files, not the registry.
"""

from __future__ import annotations

from ghaf.models.base import LoadedModel
from ghaf.models.flavors import load_model_dir, save_model

__all__ = ["LoadedModel", "load_model_dir", "save_model"]
