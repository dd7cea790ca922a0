"""Autologging: params, per-iteration metrics and the model, for scikit-learn, LightGBM,
XGBoost and PyTorch, while a ``with autolog(run):`` block is active.

Patches are installed on entry and removed on exit; only the outermost ``fit`` of a
nested scikit-learn estimator is logged.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ghaf.logs import get_logger
from ghaf.tracking.run import ActiveRun

_log = get_logger("ghaf.tracking.autolog")
_depth = threading.local()
FRAMEWORKS = ("sklearn", "lightgbm", "xgboost", "pytorch")


def _flat_params(params: dict[str, Any]) -> dict[str, str]:
    return {
        str(k)[:250]: str(v)[:500]
        for k, v in params.items()
        if isinstance(v, str | int | float | bool | type(None))
    }


def _log_model_quietly(run: ActiveRun, model: Any, **options: Any) -> None:
    try:
        run.log_model(model, "model", **options)
    except Exception as exc:  # noqa: BLE001 - autologging must never break training
        _log.warning("autolog could not save the model", error=str(exc))


class _Patches:
    def __init__(self) -> None:
        self.undo: list[Callable[[], None]] = []

    def replace(self, owner: Any, name: str, new: Any) -> None:
        old = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, new)
        self.undo.append(lambda: setattr(owner, name, old))

    def restore(self) -> None:
        while self.undo:
            self.undo.pop()()


# scikit-learn ---------------------------------------------------------------------


def _patch_sklearn(run: ActiveRun, patches: _Patches) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    # Models, not helpers: a LabelEncoder fitted inside LightGBM is not the run's model.
    kinds = all_estimators(type_filter=["classifier", "regressor", "cluster"])
    for cls in [Pipeline, *(cls for _, cls in kinds)]:
        fit = cls.__dict__.get("fit")
        if fit is not None and cls.__module__.startswith("sklearn."):
            patches.replace(cls, "fit", _wrap_sklearn_fit(run, fit))


def _wrap_sklearn_fit(run: ActiveRun, fit: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "value", 0)
        _depth.value = depth + 1
        try:
            result = fit(self, *args, **kwargs)
        finally:
            _depth.value = depth
        x = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        if depth == 0:
            run.log_params(_flat_params(self.get_params(deep=False)))
            run.set_tag("estimator", type(self).__name__)
            if y is not None and hasattr(self, "score"):
                with contextlib.suppress(Exception):
                    run.log_metric("training_score", float(self.score(x, y)))
            _log_model_quietly(run, self, flavor="skops")
        return result

    return wrapper


# LightGBM ---------------------------------------------------------------------------


def _patch_lightgbm(run: ActiveRun, patches: _Patches) -> None:
    import lightgbm
    import lightgbm.engine
    import lightgbm.sklearn

    original = lightgbm.engine.train

    def callback(env: Any) -> None:
        for data_name, metric, value, _ in env.evaluation_result_list or ():
            run.log_metric(f"{data_name}_{metric}", float(value), env.iteration)

    @functools.wraps(original)
    def train(params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), callback]
        booster = original(params, *args, **kwargs)
        rounds = {k: v for k, v in kwargs.items() if k == "num_boost_round"}
        run.log_params(_flat_params({**params, **rounds}))
        _log_model_quietly(run, booster, flavor="lightgbm")
        return booster

    for module in (lightgbm, lightgbm.engine, lightgbm.sklearn):
        patches.replace(module, "train", train)


# XGBoost ----------------------------------------------------------------------------


def _patch_xgboost(run: ActiveRun, patches: _Patches) -> None:
    import xgboost
    import xgboost.sklearn
    import xgboost.training
    from xgboost.callback import TrainingCallback

    class _Logger(TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            for data_name, metrics in evals_log.items():
                for metric, values in metrics.items():
                    value = values[-1]
                    value = value[0] if isinstance(value, tuple) else value
                    run.log_metric(f"{data_name}_{metric}", float(value), epoch)
            return False

    original = xgboost.training.train

    @functools.wraps(original)
    def train(params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), _Logger()]
        booster = original(params, *args, **kwargs)
        rounds = {k: v for k, v in kwargs.items() if k == "num_boost_round"}
        run.log_params(_flat_params({**params, **rounds}))
        _log_model_quietly(run, booster, flavor="xgboost")
        return booster

    for module in (xgboost, xgboost.training, xgboost.sklearn):
        patches.replace(module, "train", train)


# PyTorch ----------------------------------------------------------------------------


class _TorchState:
    def __init__(self) -> None:
        self.step = 0
        self.model: Any = None
        self.optimizer: Any = None


def _patch_pytorch(run: ActiveRun, patches: _Patches, state: _TorchState) -> None:
    import torch
    from torch.nn.modules.module import register_module_forward_hook
    from torch.optim.optimizer import register_optimizer_step_post_hook

    def after_step(optimizer: Any, args: Any, kwargs: Any) -> None:
        state.optimizer = optimizer
        run.log_metric("lr", float(optimizer.param_groups[0]["lr"]), state.step)
        state.step += 1

    def on_forward(module: Any, args: Any, output: Any) -> None:
        if state.model is None or module is not state.model:
            size = sum(p.numel() for p in module.parameters())
            if state.model is None or size > sum(p.numel() for p in state.model.parameters()):
                state.model = module

    original_backward = torch.Tensor.backward

    def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.dim() == 0:
            run.log_metric("loss", float(self.detach()), state.step)
        return original_backward(self, *args, **kwargs)  # type: ignore[no-untyped-call]

    step_handle = register_optimizer_step_post_hook(after_step)
    forward_handle = register_module_forward_hook(on_forward)
    patches.undo.append(step_handle.remove)
    patches.undo.append(forward_handle.remove)
    patches.replace(torch.Tensor, "backward", backward)


def _finish_pytorch(run: ActiveRun, state: _TorchState) -> None:
    if state.optimizer is not None:
        group = state.optimizer.param_groups[0]
        run.log_params(
            {
                "optimizer": type(state.optimizer).__name__,
                **{f"optimizer_{k}": v for k, v in _flat_params(group).items()},
            }
        )
    if state.model is not None:
        run.log_params({"model_class": type(state.model).__name__})
        # A Sequential of standard layers is saved as data; any other module needs its
        # code (save it yourself with code=PATH), so it is only warned about here.
        _log_model_quietly(run, state.model, flavor="pytorch")


@contextlib.contextmanager
def autolog(
    run: ActiveRun,
    *,
    frameworks: tuple[str, ...] = FRAMEWORKS,
) -> Iterator[ActiveRun]:
    """Log params, per-iteration metrics and the model of training code run in the block.

    Args:
        run: the run to log into.
        frameworks: which of ``sklearn``, ``lightgbm``, ``xgboost``, ``pytorch`` to patch
            (those not installed are skipped). A PyTorch ``Sequential`` of standard
            layers is logged as a model (weights as safetensors, layers as data).
    """
    patches = _Patches()
    torch_state = _TorchState()
    installers: dict[str, Callable[[], None]] = {
        "sklearn": lambda: _patch_sklearn(run, patches),
        "lightgbm": lambda: _patch_lightgbm(run, patches),
        "xgboost": lambda: _patch_xgboost(run, patches),
        "pytorch": lambda: _patch_pytorch(run, patches, torch_state),
    }
    installed = []
    try:
        for name in frameworks:
            try:
                installers[name]()
                installed.append(name)
            except ImportError:
                continue
        yield run
    finally:
        patches.restore()
        if "pytorch" in installed:
            _finish_pytorch(run, torch_state)
