"""The model registry: versions, aliases, lifecycle with four-eyes approval, model cards."""

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
from ghaf.registry.service import (
    get_model_version,
    list_models,
    list_versions,
    load_example,
    register_model,
)

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
