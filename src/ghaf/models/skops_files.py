"""skops files: skops imported without its estimator scan, a file's types checked by Ghaf.

skops constructs only the types its caller trusts: it trusts a default list and reports
every other type a file names (``get_untrusted_types``). Ghaf accepts a reported name
only when :func:`accepted` says so, refuses the file naming the others, and loads with
exactly the accepted names as ``trusted``. The policy:

- a class defined in scikit-learn, LightGBM or XGBoost (their estimators, and the state
  objects a fitted model holds, such as a histogram gradient boosting's ``TreePredictor``),
- or one of :data:`PLAIN_TYPES` (containers and scalars with no side effects).

Anything else is refused, functions above all: skops *calls* what some nodes name
(``ConstructorFromReduceNode`` calls the named object with arguments from the file), so
trusting ``builtins.eval`` or a module-level function such as ``numpy.save`` would let a
crafted file run code or write files. (Before, names were accepted by package prefix,
``builtins.`` included, and such a file ran ``eval`` on load.)

Importing ``skops.io`` runs scikit-learn's ``all_estimators()`` to build skops' default
trust list: it imports every scikit-learn module and, through the vendored array API
shim, PyTorch (3 to 10 s). Ghaf does not need that list, since every estimator name it
loads goes through :func:`accepted` and is passed as ``trusted``; :func:`skops_io`
imports skops with the scan answering no estimators, so each estimator is reported and
decided by this policy. The types loaded are the same either way (every scanned name is
a scikit-learn class, which the policy accepts).
"""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from ghaf.errors import MissingDependencyError, PolicyViolationError

CLASS_PACKAGES = frozenset({"sklearn", "lightgbm", "xgboost"})
"""Packages whose classes a skops file may construct."""
PLAIN_TYPES = frozenset(
    {
        "builtins.bool",
        "builtins.bytes",
        "builtins.complex",
        "builtins.dict",
        "builtins.float",
        "builtins.frozenset",
        "builtins.int",
        "builtins.list",
        "builtins.set",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "collections.OrderedDict",
        "collections.defaultdict",
        "numpy.dtype",  # a fitted SimpleImputer or KBinsDiscretizer keeps one
    }
)
"""Container and scalar types accepted by exact name."""
_IMPORTING = threading.Lock()


def skops_io() -> ModuleType:
    """``skops.io``, imported without scikit-learn's ``all_estimators()`` scan."""
    with _IMPORTING:  # one patcher at a time, so the scan is always put back
        if "skops.io" in sys.modules:
            return sys.modules["skops.io"]
        try:
            import sklearn.utils
        except ImportError as exc:  # pragma: no cover - scikit-learn is in the ml extra
            raise MissingDependencyError("scikit-learn", "ml") from exc
        scan = sklearn.utils.all_estimators
        # skops calls it once, at import, for its default trust list (see the module doc).
        sklearn.utils.all_estimators = _no_estimators
        try:
            import skops.io as sio
        except ImportError as exc:  # pragma: no cover - skops is in the ml extra
            raise MissingDependencyError("skops", "ml") from exc
        finally:
            sklearn.utils.all_estimators = scan
        return cast(ModuleType, sio)


def _no_estimators(type_filter: Any = None) -> list[tuple[str, type]]:
    return []


def accepted(name: str) -> bool:
    """Whether a skops file may construct the type (or call the object) ``name``."""
    if name in PLAIN_TYPES:
        return True
    module, _, attribute = name.rpartition(".")
    if module.split(".")[0] not in CLASS_PACKAGES or not attribute:
        return False  # refused before anything of it is imported
    try:
        obj = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        return False
    defined_in = str(getattr(obj, "__module__", "")).split(".")[0]
    return isinstance(obj, type) and defined_in in CLASS_PACKAGES


def trusted_types(path: Path) -> list[str]:
    """The type names of the skops file ``path`` to pass as ``trusted``.

    Raises:
        PolicyViolationError: the file names a type the policy refuses, naming them all.
    """
    untrusted = skops_io().get_untrusted_types(file=path)
    refused = sorted(name for name in untrusted if not accepted(name))
    if refused:
        raise PolicyViolationError(
            f"{path.name} contains types that are not trusted: {', '.join(refused)}",
            hint="save estimators built from scikit-learn, LightGBM or XGBoost classes only "
            "(no functions), or register the model in another format",
        )
    return list(untrusted)


def load_skops(path: Path) -> Any:
    """The object in the skops file ``path``, its types checked first (see the module doc)."""
    return skops_io().load(path, trusted=trusted_types(path))
