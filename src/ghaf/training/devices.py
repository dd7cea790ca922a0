"""Device selection and the cost of what a training used."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ghaf.errors import InvalidInputError


@dataclass(frozen=True)
class Device:
    """Where a training runs: ``cpu`` or ``cuda``, the GPU's machine class and why."""

    kind: str
    gpu_class: str | None = None
    reason: str = ""


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA device (False when torch is not installed)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional extra
        return False
    return bool(torch.cuda.is_available())


def gpu_class() -> str | None:
    """The first GPU's machine class, e.g. ``nvidia-h100`` (None without CUDA)."""
    if not cuda_available():
        return None
    import torch

    name = torch.cuda.get_device_name(0).lower()
    match = re.search(r"\b([a-z]\d{2,4}[a-z]?)\b", name)
    return f"nvidia-{match.group(1)}" if match else re.sub(r"[^a-z0-9]+", "-", name).strip("-")


def framework_uses_cuda(framework: str) -> bool:
    """Whether this install of the framework can train on CUDA at all.

    PyTorch can; XGBoost only when it is a CUDA build (the ``xgboost-cpu`` wheel Ghaf pins
    for CI is not, the full ``xgboost`` wheel is); scikit-learn and LightGBM train on CPU.
    """
    if framework == "pytorch":
        return True
    if framework == "xgboost":
        try:
            import xgboost
        except ImportError:  # pragma: no cover - part of the ml extra
            return False
        return bool(xgboost.build_info().get("USE_CUDA", False))
    return False


def select_device(requested: str, framework: str) -> Device:
    """``auto``: CUDA when present (and the framework can use it), else CPU; ``cuda`` insists.

    Raises:
        InvalidInputError: CUDA asked for but not present, or not usable by the framework.
    """
    if requested == "cpu":
        return Device("cpu", reason="asked for cpu")
    present = cuda_available()
    usable = present and framework_uses_cuda(framework)
    if requested == "cuda":
        if not present:
            raise InvalidInputError(
                "device 'cuda' was asked for but no CUDA device is present",
                hint="use device='auto' to fall back to the CPU, or run on a GPU machine",
            )
        if not usable:
            raise InvalidInputError(
                f"framework {framework!r} does not train on CUDA in this install",
                hint="use device='cpu' or 'auto'; for XGBoost on CUDA install the full "
                "'xgboost' wheel instead of 'xgboost-cpu'",
            )
        return Device("cuda", gpu_class(), "asked for cuda")
    if usable:
        return Device("cuda", gpu_class(), "auto: CUDA present")
    why = "no CUDA device" if not present else f"{framework} trains on CPU in this install"
    return Device("cpu", reason=f"auto: {why}")


def training_cost(prices: dict[str, float], cpu_s: float, gpu_s: float, gpu: str | None) -> float:
    """CPU-hours times the CPU price plus GPU-hours times the machine class's GPU price."""
    cost = cpu_s / 3600.0 * prices.get("cpu", 0.0)
    if gpu_s:
        rate = prices.get(f"gpu:{gpu}", prices.get("gpu", 0.0)) if gpu else prices.get("gpu", 0.0)
        cost += gpu_s / 3600.0 * rate
    return cost
