"""A Ray Train epoch checkpoint holds everything a restarted worker needs: training on
from it gives exactly the weights of training straight through (no Ray needed here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ghaf.training.ray_train import _resume, _write_torch_checkpoint  # noqa: E402
from ghaf.training.torch_loop import build_mlp  # noqa: E402


def _steps(model: Any, optimizer: Any, x: Any, y: Any, count: int) -> None:
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(count):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def _fresh() -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = build_mlp(4, [8], 1)
    return model, torch.optim.Adam(model.parameters(), lr=0.05)


def test_resuming_from_an_epoch_checkpoint_equals_training_through(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(64, 4)).astype(np.float32))
    y = (x[:, :1] > 0).float()

    straight, straight_opt = _fresh()
    _steps(straight, straight_opt, x, y, 10)

    first, first_opt = _fresh()
    _steps(first, first_opt, x, y, 4)
    state = {"task": "classification", "epochs": 3, "losses": [0.7], "cpu_s": 1.0, "loop_s": 2.0}
    _write_torch_checkpoint(tmp_path, first, first_opt, state, epoch=0)
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".pt", ".pkl", ".pickle")]
    assert json.loads((tmp_path / "state.json").read_text())["epoch"] == 0

    # A restarted worker: new, differently initialised model and optimizer, then resume.
    torch.manual_seed(99)
    resumed = build_mlp(4, [8], 1)
    resumed_opt = torch.optim.Adam(resumed.parameters(), lr=0.05)
    figures, next_epoch = _resume(tmp_path, resumed, resumed_opt, "cpu")
    assert next_epoch == 1
    assert figures["losses"] == [0.7] and figures["cpu_s"] == 1.0
    _steps(resumed, resumed_opt, x, y, 6)

    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
