"""Which extra installs each optional third-party module, and the error that names it.

A core install (``pip install ghaf``) runs the embedded platform: ``ghaf init``,
``doctor``, data, tracking, registry, monitoring and the remote client. Everything else
comes with an extra; importing one of its modules without it raises
:class:`~ghaf.errors.MissingDependencyError` with the ``pip install 'ghaf[extra]'`` line,
never a bare ``ModuleNotFoundError`` (:class:`ExtrasFinder`, installed by ``import ghaf``).
``tests/packaging`` checks this table against the
extras in ``pyproject.toml`` and against every import in ``src/ghaf``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

from ghaf.errors import MissingDependencyError

OPTIONAL_MODULES: dict[str, tuple[str, str]] = {
    # import name: (distribution, extra)
    "boto3": ("boto3", "s3"),
    "botocore": ("boto3", "s3"),
    "deltalake": ("deltalake", "data"),
    "fairlearn": ("fairlearn", "ml"),
    "fastapi": ("fastapi", "server"),
    "httptools": ("httptools", "serve"),
    "jinja2": ("Jinja2", "ui"),
    "joblib": ("scikit-learn", "ml"),
    "lightgbm": ("lightgbm", "ml"),
    "model_signing": ("model-signing", "ml"),
    "nats": ("nats-py", "nats"),
    "onnx": ("onnx", "ml"),
    "onnxruntime": ("onnxruntime", "ml"),
    "OpenSSL": ("pyOpenSSL", "ml"),
    "opentelemetry": ("opentelemetry-sdk", "server"),
    "optuna": ("optuna", "ml"),
    "prometheus_client": ("prometheus-client", "serve"),
    "psycopg": ("psycopg", "postgres"),
    "pyiceberg": ("pyiceberg", "data"),
    "ray": ("ray", "ray"),
    "redis": ("redis", "redis"),
    "river": ("river", "ml"),
    "s3fs": ("s3fs", "s3"),
    "safetensors": ("safetensors", "torch"),
    "skl2onnx": ("skl2onnx", "ml"),
    "sklearn": ("scikit-learn", "ml"),
    "skops": ("skops", "ml"),
    "starlette": ("starlette", "serve"),
    "torch": ("torch", "torch"),
    "uvicorn": ("uvicorn", "serve"),
    "uvloop": ("uvloop", "serve"),
    "xgboost": ("xgboost-cpu", "ml"),
}
"""Top-level import name -> (the distribution that provides it, the extra that installs it)."""


def missing_dependency(exc: ModuleNotFoundError) -> MissingDependencyError | None:
    """The error naming the extra for an optional module that failed to import.

    Returns ``None`` when the missing module is not an optional dependency (a bug, or a
    user's own module), so the caller re-raises the original exception.
    """
    known = OPTIONAL_MODULES.get((exc.name or "").partition(".")[0])
    return None if known is None else MissingDependencyError(*known)


_IMPORT_MACHINERY = ("importlib", "_frozen_importlib", "_frozen_importlib_external")


def _importer_is_ghaf() -> bool:
    """Whether the module running the failed import is one of Ghaf's own (not a user's or
    a library's probe, which keeps its plain ``ModuleNotFoundError``)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name.partition(".")[0] not in _IMPORT_MACHINERY and name != __name__:
            return name == "ghaf" or name.startswith("ghaf.")
        frame = frame.f_back  # type: ignore[assignment]
    return False


class ExtrasFinder:
    """The last finder on ``sys.meta_path``: asked only once every other finder has failed,
    it turns Ghaf's own import of a missing optional module (a function-level ``import
    sklearn``, say) into the :class:`~ghaf.errors.MissingDependencyError` naming the extra,
    wherever the import sits, for the SDK as for the CLI. (A plain class with the
    ``find_spec`` hook: ``importlib.abc`` would cost ``ghaf --help`` 20 ms.)"""

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        known = OPTIONAL_MODULES.get(fullname)  # top-level names only: a package that is
        if known is None or not _importer_is_ghaf():  # there keeps its own submodule errors
            return None
        raise MissingDependencyError(*known)


def install_extras_finder() -> None:
    """Put :class:`ExtrasFinder` last on ``sys.meta_path`` (once)."""
    if ExtrasFinder not in sys.meta_path:
        sys.meta_path.append(ExtrasFinder)
