"""PyTorch models: the state dict as safetensors plus a model-definition entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ghaf.errors import InvalidInputError, MissingDependencyError
from ghaf.models.base import LoadedModel, ModelMeta, to_matrix
from ghaf.models.flavors.pyfunc import resolve_entry_point

name = "pytorch"
FILE = "model.safetensors"


def _torch() -> Any:
    try:
        import safetensors.torch
        import torch
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("torch", "torch") from exc
    return torch, safetensors.torch


def save(
    model: Any,
    directory: Path,
    *,
    entry_point: str | None = None,
    entry_kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> None:
    """Write ``model.state_dict()`` as safetensors; ``entry_point`` ("module:function")
    builds an untrained module of the same architecture from ``entry_kwargs``."""
    if entry_point is None:
        raise InvalidInputError(
            "a PyTorch model needs entry_point='module:function' that builds the module",
            hint="pass entry_point= (code by reference; weights go to safetensors)",
        )
    resolve_entry_point(entry_point)
    _, st = _torch()
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    st.save_file(state, str(directory / FILE))
    opts = {"entry_point": entry_point, "entry_kwargs": entry_kwargs or {}, **options}
    ModelMeta(name, [FILE], opts).write(directory)


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


def load(directory: Path) -> LoadedModel:
    _, st = _torch()
    meta = ModelMeta.read(directory)
    build = resolve_entry_point(str(meta.options["entry_point"]))
    module = build(**meta.options.get("entry_kwargs", {}))
    module.load_state_dict(st.load_file(str(directory / FILE)))
    module.eval()
    return TorchModel(name, module)
