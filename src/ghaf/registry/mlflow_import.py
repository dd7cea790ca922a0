"""Import an MLflow model directory: re-save it in a safe format, register and sign it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from ghaf.artifacts.scratch import scratch_dir
from ghaf.errors import InvalidInputError, NotFoundError, PolicyViolationError
from ghaf.models.flavors import get_flavor, save_model
from ghaf.models.safe_pickle import restricted_load
from ghaf.platform import Platform
from ghaf.registry.base import ModelVersion
from ghaf.registry.service import register_model
from ghaf.security.identity import Actor

SUPPORTED = ("onnx", "lightgbm", "xgboost", "sklearn", "pytorch")
_SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "lightgbm.", "xgboost.", "collections.")


def _read_mlmodel(directory: Path) -> dict[str, Any]:
    path = directory / "MLmodel"
    if not path.is_file():
        raise NotFoundError(
            f"{directory} has no MLmodel file: it is not an MLflow model directory",
            hint="pass the directory mlflow.<flavor>.save_model wrote (or a run's artifacts/model)",
        )
    body = yaml.safe_load(path.read_text())
    if not isinstance(body, dict) or not isinstance(body.get("flavors"), dict):
        raise InvalidInputError(f"{path} has no flavors section", hint="re-save it with mlflow")
    return body


def _unpickle(path: Path) -> Any:
    try:
        return restricted_load(path, module_prefixes=_SAFE_PREFIXES)
    except PolicyViolationError as exc:
        raise PolicyViolationError(
            f"MLflow model file {path.name} was refused: {exc.headline}",
            hint="re-save it with a native format (ONNX, LightGBM text, XGBoost UBJ, skops)",
        ) from exc


def _convert(
    directory: Path,
    flavors: dict[str, Any],
    out: Path,
    architecture: Path | None,
    code: Path | None,
) -> str:
    if "onnx" in flavors:
        save_model(directory / flavors["onnx"]["data"], out, flavor="onnx")
        return "onnx"
    if "lightgbm" in flavors:
        import lightgbm

        data = directory / flavors["lightgbm"]["data"]
        model = _unpickle(data) if data.suffix == ".pkl" else lightgbm.Booster(model_file=str(data))
        save_model(model, out, flavor="lightgbm")
        return "lightgbm"
    if "xgboost" in flavors:
        import xgboost

        spec = flavors["xgboost"]
        cls_name = str(spec.get("model_class", "xgboost.core.Booster")).rsplit(".", 1)[-1]
        model = getattr(xgboost, cls_name)() if cls_name != "Booster" else xgboost.Booster()
        model.load_model(str(directory / spec["data"]))
        save_model(model, out, flavor="xgboost")
        return "xgboost"
    if "sklearn" in flavors:
        spec = flavors["sklearn"]
        data = directory / spec.get("pickled_model", "model.pkl")
        if spec.get("serialization_format") == "skops":
            shutil.copyfile(data, out.parent / "model.skops")
            model = _load_skops(out.parent / "model.skops")
        else:
            model = _unpickle(data)
        save_model(model, out, flavor="skops")
        return "skops"
    if "pytorch" in flavors:
        return _convert_pytorch(directory, flavors["pytorch"], out, architecture, code)
    raise InvalidInputError(
        f"MLflow flavors {', '.join(sorted(flavors))} are not supported",
        hint=f"Ghaf imports: {', '.join(SUPPORTED)}",
    )


def _load_skops(path: Path) -> Any:
    """Read MLflow's skops file with the skops flavor (its type allow-list applies)."""
    skops_flavor = get_flavor("skops")
    directory = path.parent / "skops-in"
    directory.mkdir()
    shutil.copyfile(path, directory / skops_flavor.FILE)
    return skops_flavor.load(directory).raw


def _read_architecture(path: Path) -> Any:
    """Layer specs from a JSON or YAML file (``[{"layer": "Linear", ...}, ...]``)."""
    if not path.is_file():
        raise NotFoundError(f"architecture file {path} does not exist", hint="check the path")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"architecture file {path} is not JSON or YAML: {exc}",
            hint='e.g. [{"layer": "Linear", "in_features": 4, "out_features": 2}]',
        ) from exc


def _convert_pytorch(
    directory: Path,
    spec: dict[str, Any],
    out: Path,
    architecture: Path | None,
    code: Path | None,
) -> str:
    import torch

    from ghaf.models.flavors.pytorch import LAYERS, build_architecture, save_weights

    if (architecture is None) == (code is None):
        raise InvalidInputError(
            "importing a PyTorch model needs one of --architecture FILE or --code FILE",
            hint=f"--architecture: the layers as JSON/YAML data ({', '.join(LAYERS)}); "
            "--code: a .py file whose build() returns the module (custom code: the "
            "project's code policy must allow it)",
        )
    data = directory / spec.get("model_data", "data")
    files = sorted(data.rglob("*.pth")) if data.is_dir() else [data]
    if not files:
        raise NotFoundError(f"no .pth file under {data}", hint="check the MLflow model directory")
    try:
        state = torch.load(files[0], weights_only=True, map_location="cpu")
    except Exception as exc:
        raise PolicyViolationError(
            f"{files[0].name} is a pickled module, not a state dict; it was not loaded",
            hint="log the model with mlflow.pytorch.log_state_dict, or export it to ONNX",
        ) from exc
    if architecture is not None:
        layers = _read_architecture(architecture)
        try:  # the weights must fit the architecture they are stored with
            build_architecture(layers).load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise InvalidInputError(
                f"{files[0].name} does not fit the architecture in {architecture}: {exc}",
                hint="describe the layers the state dict was trained with",
            ) from exc
        save_weights(state, out, architecture=layers)
    else:
        save_weights(state, out, code=code)  # runs nothing now; registration checks the policy
    return "pytorch"


def import_mlflow_model(
    platform: Platform,
    actor: Actor,
    path: Path,
    name: str,
    *,
    architecture: Path | None = None,
    code: Path | None = None,
    description: str = "",
) -> ModelVersion:
    """Re-save the MLflow model at ``path`` in a safe format and register it as ``name``.

    Pickled scikit-learn/LightGBM models are read with an allow-listing unpickler
    (estimator and NumPy types only); anything that names other code is refused. A
    PyTorch state dict (read with ``weights_only=True``) needs its architecture as data
    (``architecture``: a JSON/YAML file of layers) or as custom code (``code``: a
    ``.py`` file, stored inside the model; the project's code policy must allow it).
    """
    directory = Path(path)
    flavors = _read_mlmodel(directory)["flavors"]
    with scratch_dir(platform.settings.home, "mlflow-") as tmp:
        out = tmp / "model"
        flavor = _convert(directory, flavors, out, architecture, code)
        return register_model(
            platform,
            actor,
            name,
            out,
            description=description or f"Imported from the MLflow model at {directory} ({flavor}).",
        )
