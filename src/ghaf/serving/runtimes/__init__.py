"""Runtimes: one per model flavor, all behind :class:`ghaf.serving.base.Runtime`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.backends import runtime_class
from ghaf.errors import NotFoundError
from ghaf.serving.base import Runtime, Signature


def load_runtime(
    flavor: str,
    model_dir: Path,
    signature: Signature | None = None,
    *,
    allowed_files: list[str] | None = None,
    **options: Any,
) -> Runtime:
    """Load the model in ``model_dir`` with the runtime for ``flavor``.

    The runtime class comes from the one backend table (``ghaf.backends``).

    Args:
        allowed_files: when given (the files a verified signature lists), the runtime
            may only open one of these; anything else is an attack and is refused.
    """
    cls = runtime_class(flavor)
    runtime: Runtime = cls.load(model_dir, signature, allowed_files=allowed_files, **options)
    return runtime


def preload(flavor: str) -> None:
    """Import the library that loading a ``flavor`` model needs, as the first thing a
    command does (``ghaf predict --flavor``).

    Only skops gains from going first: at import it names each SciPy ufunc by walking the
    loaded modules in order until one holds it, so importing it before the platform's
    modules (SQLAlchemy, signing, the registry...) takes about 0.8 s less CPU. Other
    flavors are left to load when their model does.
    """
    if flavor == "skops":
        from ghaf.models.skops_files import skops_io

        skops_io()


def find_model_file(model_dir: Path, suffixes: tuple[str, ...], allowed: list[str] | None) -> Path:
    """The model file in ``model_dir`` with one of ``suffixes`` (only a listed one if given)."""
    candidates = sorted(
        path for path in model_dir.rglob("*") if path.is_file() and path.name.endswith(suffixes)
    )
    if allowed is not None:
        listed = {str(Path(name)) for name in allowed}
        candidates = [p for p in candidates if str(p.relative_to(model_dir)) in listed]
    if not candidates:
        raise NotFoundError(
            f"no model file ({', '.join(suffixes)}) in {model_dir}",
            hint="register the model with its flavor's save() so its file is in the directory",
        )
    return candidates[0]


__all__ = ["find_model_file", "load_runtime"]
