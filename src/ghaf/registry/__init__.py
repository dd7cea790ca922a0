"""The model registry: versions, aliases, lifecycle with four-eyes approval, model cards.

The names are imported lazily (as in ``ghaf/__init__.py``): ``ghaf models list`` needs
only the version tables, not the model flavors, the gates' metrics or the tracker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghaf.lazy import lazy_getattr

if TYPE_CHECKING:
    from ghaf.registry.base import ModelVersion, parse_ref
    from ghaf.registry.download import download_model, load_model
    from ghaf.registry.gates import GateVerdict, evaluate_gates, gate_verdicts
    from ghaf.registry.lifecycle import (
        approve_model_version,
        delete_alias,
        set_alias,
        transition_model_version,
        update_model_card,
    )
    from ghaf.registry.listing import list_models
    from ghaf.registry.service import (
        get_model_version,
        list_versions,
        load_example,
        register_model,
    )

_EXPORTS = {
    "GateVerdict": "ghaf.registry.gates",
    "ModelVersion": "ghaf.registry.base",
    "approve_model_version": "ghaf.registry.lifecycle",
    "delete_alias": "ghaf.registry.lifecycle",
    "download_model": "ghaf.registry.download",
    "evaluate_gates": "ghaf.registry.gates",
    "gate_verdicts": "ghaf.registry.gates",
    "get_model_version": "ghaf.registry.service",
    "list_models": "ghaf.registry.listing",
    "list_versions": "ghaf.registry.service",
    "load_example": "ghaf.registry.service",
    "load_model": "ghaf.registry.download",
    "parse_ref": "ghaf.registry.base",
    "register_model": "ghaf.registry.service",
    "set_alias": "ghaf.registry.lifecycle",
    "transition_model_version": "ghaf.registry.lifecycle",
    "update_model_card": "ghaf.registry.lifecycle",
}

__all__ = [
    "GateVerdict",
    "ModelVersion",
    "approve_model_version",
    "delete_alias",
    "download_model",
    "evaluate_gates",
    "gate_verdicts",
    "get_model_version",
    "list_models",
    "list_versions",
    "load_example",
    "load_model",
    "parse_ref",
    "register_model",
    "set_alias",
    "transition_model_version",
    "update_model_card",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
