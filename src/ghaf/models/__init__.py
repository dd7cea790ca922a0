"""Models: flavors that save and load each kind of model safely.

``ghaf.load_model`` (a registered model by reference) lives in the registry, above this
package: flavors know files, not the registry. The names are imported lazily, so a
module that needs only ``ghaf.models.custom_code`` does not pay for NumPy and pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghaf.lazy import lazy_getattr

if TYPE_CHECKING:
    from ghaf.models.base import LoadedModel
    from ghaf.models.flavors import load_model_dir, save_model

_EXPORTS = {
    "LoadedModel": "ghaf.models.base",
    "load_model_dir": "ghaf.models.flavors",
    "save_model": "ghaf.models.flavors",
}

__all__ = ["LoadedModel", "load_model_dir", "save_model"]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
