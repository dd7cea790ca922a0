"""The autolog test's module: a Sequential of standard layers, logged as data."""

from __future__ import annotations

from typing import Any


def build() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
