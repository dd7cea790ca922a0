"""Loading legacy pickles safely: a scan, then an unpickler that resolves only allowed globals."""

from __future__ import annotations

import importlib
import pickle  # nosec B403
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ghaf.errors import PolicyViolationError
from ghaf.security.pickles import check_pickle_file

SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("builtins", "slice"),
        ("builtins", "range"),
        ("builtins", "bytearray"),
        ("collections", "OrderedDict"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
    }
)
"""Exact (module, name) pairs any payload may reference: containers and NumPy arrays."""


class _AllowListUnpickler(pickle.Unpickler):  # nosec B301
    def __init__(self, handle: Any, allowed: frozenset[tuple[str, str]], prefixes: tuple[str, ...]):
        super().__init__(handle)
        self._allowed = allowed
        self._prefixes = prefixes

    def find_class(self, module: str, name: str) -> Any:
        ok = (module, name) in self._allowed or (
            module.startswith(self._prefixes) and not name.startswith("_")
        )
        if not ok:
            raise PolicyViolationError(
                f"pickle refers to {module}.{name}, which is not on the allow-list",
                hint="save the model in a safe format (skops, native, ONNX, safetensors)",
            )
        return getattr(importlib.import_module(module), name)


def scan_with_security(path: Path) -> None:
    """Run the security concern's opcode scanner (an allow-list walk, before unpickling)."""
    check_pickle_file(path)


def restricted_load(
    path: Path,
    *,
    allowed: Iterable[tuple[str, str]] = (),
    module_prefixes: tuple[str, ...] = (),
    scan: bool = True,
) -> Any:
    """Unpickle ``path`` resolving only :data:`SAFE_GLOBALS`, ``allowed`` and public names
    under ``module_prefixes`` (e.g. ``("sklearn.",)``).

    Raises:
        PolicyViolationError: naming the first global that is not allowed.
    """
    if scan:
        scan_with_security(path)
    allow = SAFE_GLOBALS | frozenset(allowed)
    with path.open("rb") as handle:
        return _AllowListUnpickler(handle, allow, module_prefixes).load()
