"""PyTorch models: weights as safetensors, the architecture as data (or as custom code).

A ``torch.nn.Sequential`` of standard layers is stored as a list of layer specs and
rebuilt from a fixed table of ``torch.nn`` classes: no code runs. Any other module
needs its architecture as code: ``code/<name>.py`` inside the model directory whose
``build(**build_kwargs)`` returns the module, run only where the project's code policy
allows custom code (:mod:`ghaf.models.custom_code`). Nothing in ``ghaf-model.json``
names code to import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ghaf.errors import InvalidInputError, MissingDependencyError, PolicyViolationError
from ghaf.models.base import MODEL_FILE, LoadedModel, ModelMeta, to_matrix
from ghaf.models.custom_code import (
    CodePolicy,
    call_build,
    copy_code,
    load_code,
    refuse_code_options,
)
from ghaf.models.formats import check_format

name = "pytorch"
FILE = "model.safetensors"
FORMATS = {FILE: "safetensors"}
"""Weights only: safetensors holds tensors and a JSON header, nothing that runs."""

_INT, _FLOAT, _BOOL, _STR = (int,), (float, int), (bool,), (str,)
LAYERS: dict[str, dict[str, tuple[type, ...]]] = {
    "Linear": {"in_features": _INT, "out_features": _INT, "bias": _BOOL},
    "ReLU": {},
    "Sigmoid": {},
    "Tanh": {},
    "SiLU": {},
    "Identity": {},
    "GELU": {"approximate": _STR},
    "LeakyReLU": {"negative_slope": _FLOAT},
    "Softmax": {"dim": (int, type(None))},
    "LogSoftmax": {"dim": (int, type(None))},
    "Dropout": {"p": _FLOAT},
    "Flatten": {"start_dim": _INT, "end_dim": _INT},
    "BatchNorm1d": {
        "num_features": _INT,
        "eps": _FLOAT,
        "momentum": (float, int, type(None)),
        "affine": _BOOL,
        "track_running_stats": _BOOL,
    },
    "LayerNorm": {
        "normalized_shape": (list,),
        "eps": _FLOAT,
        "elementwise_affine": _BOOL,
        "bias": _BOOL,
    },
}
"""The ``torch.nn`` layers an architecture may hold as data, and their arguments' types."""


def _torch() -> Any:
    try:
        import safetensors.torch
        import torch
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("torch", "torch") from exc
    return torch, safetensors.torch


def _layer_spec(layer: Any) -> dict[str, Any] | None:
    kind = type(layer).__name__
    if kind not in LAYERS or type(layer).__module__.split(".")[:2] != ["torch", "nn"]:
        return None
    spec: dict[str, Any] = {"layer": kind}
    for arg in LAYERS[kind]:
        if arg == "bias":
            spec[arg] = layer.bias is not None
        elif arg == "normalized_shape":
            spec[arg] = [int(n) for n in layer.normalized_shape]
        else:
            spec[arg] = getattr(layer, arg)
    return spec


def architecture_of(module: Any) -> list[dict[str, Any]] | None:
    """``module`` as layer specs when it is a ``Sequential`` of :data:`LAYERS` (else None)."""
    torch, _ = _torch()
    if type(module) is not torch.nn.Sequential:
        return None
    specs = [_layer_spec(layer) for layer in module]
    return None if any(s is None for s in specs) else [s for s in specs if s is not None]


def architecture_problems(architecture: Any) -> list[str]:
    """Why ``architecture`` is not a list of layer specs from :data:`LAYERS` (empty: it is)."""
    if not isinstance(architecture, list) or not architecture:
        return ["architecture must be a non-empty list of layers"]
    problems = []
    for index, spec in enumerate(architecture):
        kind = spec.get("layer") if isinstance(spec, dict) else None
        if kind not in LAYERS:
            problems.append(
                f"architecture layer {index}: {kind!r} is not one of {', '.join(LAYERS)}"
            )
            continue
        for arg, value in spec.items():
            allowed = LAYERS[kind].get(arg)
            if arg == "layer":
                continue
            if allowed is None:
                problems.append(f"architecture layer {index} ({kind}): unknown argument {arg}")
            elif not isinstance(value, allowed) or (
                isinstance(value, bool) and bool not in allowed
            ):
                problems.append(
                    f"architecture layer {index} ({kind}): {arg} = {value!r} is not "
                    f"{' or '.join(t.__name__ for t in allowed)}"
                )
    return problems


def meta_problems(options: dict[str, Any]) -> list[str]:
    """What in ``ghaf-model.json``'s options the loader would refuse (for inspection)."""
    if "code" in options:
        return []
    if "architecture" not in options:
        return [f"{MODEL_FILE} of this PyTorch model has neither an architecture nor code"]
    return architecture_problems(options["architecture"])


def build_architecture(architecture: Any) -> Any:
    """The untrained ``Sequential`` the layer specs describe (no code from the model runs).

    Raises:
        PolicyViolationError: a layer or argument outside :data:`LAYERS`.
    """
    problems = architecture_problems(architecture)
    if problems:
        raise PolicyViolationError(
            problems[0], hint=f"layers may be {', '.join(LAYERS)} with their plain arguments"
        )
    torch, _ = _torch()
    layers = []
    for spec in architecture:
        kwargs = {k: v for k, v in spec.items() if k != "layer"}
        layers.append(getattr(torch.nn, spec["layer"])(**kwargs))  # a name from LAYERS only
    return torch.nn.Sequential(*layers)


def _plain(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} must be plain JSON data: {exc}", hint="numbers, strings, lists and dicts"
        ) from exc


def save_weights(
    state: dict[str, Any],
    directory: Path,
    *,
    architecture: list[dict[str, Any]] | None = None,
    code: Path | str | None = None,
    build_kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Write a state dict as safetensors with its architecture (data) or its code file."""
    refuse_code_options(options)
    if (architecture is None) == (code is None):
        raise InvalidInputError(
            "a PyTorch model needs exactly one of architecture= (layers as data) or code=",
            hint="a Sequential of standard layers is saved as data; other modules need "
            "code=PATH of a .py file whose build(**build_kwargs) returns the module",
        )
    _, st = _torch()
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    st.save_file(tensors, str(directory / FILE))
    if architecture is not None:
        problems = architecture_problems(_plain(architecture, "architecture"))
        if problems:
            raise InvalidInputError(problems[0], hint=f"layers may be {', '.join(LAYERS)}")
        opts = {"architecture": _plain(architecture, "architecture"), **options}
        ModelMeta(name, [FILE], opts).write(directory)
        return
    assert code is not None  # nosec B101 - type narrowing
    relative = copy_code(code, directory)
    kwargs = _plain(build_kwargs or {}, "build_kwargs")
    opts = {"code": relative, "build_kwargs": kwargs, **options}
    ModelMeta(name, [FILE, relative], opts).write(directory)


def save(
    model: Any,
    directory: Path,
    *,
    code: Path | str | None = None,
    build_kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Write ``model.state_dict()`` as safetensors and its architecture as data; a module
    that is not a ``Sequential`` of :data:`LAYERS` needs ``code`` (custom code)."""
    refuse_code_options(options)
    architecture = architecture_of(model) if code is None else None
    if code is None and architecture is None:
        raise InvalidInputError(
            f"a {type(model).__name__} cannot be saved as data: only a torch.nn.Sequential "
            f"of {', '.join(LAYERS)} can",
            hint="pass code=PATH of a .py file whose build(**build_kwargs) returns the module "
            "(custom code: the project's code policy must allow it), or export it to ONNX",
        )
    save_weights(
        model.state_dict(),
        directory,
        architecture=architecture,
        code=code,
        build_kwargs=build_kwargs,
        **options,
    )


class TorchModel(LoadedModel):
    """An ``nn.Module`` in eval mode; ``predict`` returns its output, ``predict_proba``
    the softmax (or sigmoid, for one output column) of it."""

    def _forward(self, data: Any) -> np.ndarray[Any, Any]:
        torch, _ = _torch()
        with torch.no_grad():
            out = self.raw(torch.from_numpy(to_matrix(data, np.float32)))
        return np.asarray(out.detach().cpu().numpy())

    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        return self._forward(data)

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        logits = self._forward(data)
        if logits.ndim == 1 or logits.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
            return np.column_stack([1.0 - p, p])
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))


def load(directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
    """Rebuild the architecture (from data, or by the code the policy allows), then load
    the safetensors weights into it (strictly: every tensor must match).

    Raises:
        PolicyViolationError: a layer outside :data:`LAYERS`, or code the project's
            policy does not allow.
        InvalidInputError: the weights do not fit the architecture.
    """
    _, st = _torch()
    check_format(directory / FILE, FORMATS[FILE])
    meta = ModelMeta.read(directory)
    relative = meta.options.get("code")
    if relative is not None:
        code = load_code(directory, str(relative), code_policy)
        module = call_build(code, str(relative), **dict(meta.options.get("build_kwargs") or {}))
        if not hasattr(module, "load_state_dict"):
            raise InvalidInputError(
                f"{relative}: build returned a {type(module).__name__}, not a torch module",
                hint="return a torch.nn.Module",
            )
    elif "architecture" in meta.options:
        module = build_architecture(meta.options["architecture"])
    else:
        raise PolicyViolationError(
            f"{MODEL_FILE} of this PyTorch model has neither an architecture nor code",
            hint="re-save it with ghaf.models.save_model (a Sequential is stored as data)",
        )
    try:
        module.load_state_dict(st.load_file(str(directory / FILE)), strict=True)
    except RuntimeError as exc:
        raise InvalidInputError(
            f"{FILE} does not fit the architecture: {exc}",
            hint="re-save the model so weights and architecture come from the same module",
        ) from exc
    module.eval()
    return TorchModel(name, module)
