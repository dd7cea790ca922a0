"""Models built in the flavor tests."""

from __future__ import annotations

from typing import Any


def build_net(n_in: int = 4, n_out: int = 2) -> Any:
    """A Sequential of standard layers: saved as data, no code."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(n_in, 8), torch.nn.ReLU(), torch.nn.Linear(8, n_out))
