"""Pickle and joblib files: an opcode walk against an allow-list of exact (module, name) pairs.

A pickle runs whatever callables its ``GLOBAL``/``STACK_GLOBAL`` opcodes name, so
blocklists miss payloads (``importlib.import_module``, ``getattr`` chains...). Here
every global must be one of a fixed set of benign scikit-learn, NumPy and builtin
names; anything else is refused before a single opcode is executed. Joblib files
interleave raw array bytes with the pickle stream, so once the walk reaches the
first array they are read by joblib's unpickler with the same allow-list enforced
in ``find_class`` (which runs before any callable it resolves could be called).

Prefer formats that cannot run code (skops, ONNX, native LightGBM/XGBoost,
safetensors); this is for legacy models only, and only after the signature verified.
"""

from __future__ import annotations

import functools
import io
import pickle  # nosec B403 - only through an allow-listed find_class
import pickletools  # nosec B403 - reads opcodes, executes nothing
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, cast

from ghaf.errors import InvalidInputError, PolicyViolationError

SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        # builtins and codecs that protocol 2 uses for bytes, sets and the like
        ("builtins", "bytes"),
        ("__builtin__", "bytes"),
        ("builtins", "bytearray"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "complex"),
        ("builtins", "object"),
        ("copyreg", "_reconstructor"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
        # NumPy arrays, dtypes, scalars, random state (old and new module paths)
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy", "float64"),
        ("numpy", "float32"),
        ("numpy", "int64"),
        ("numpy", "int32"),
        ("numpy", "bool_"),
        ("numpy", "object_"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random.mtrand", "RandomState"),
        ("numpy.random.bit_generator", "SeedSequence"),
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        # scikit-learn internals that fitted estimators hold
        ("sklearn.tree._tree", "Tree"),
        ("sklearn._loss._loss", "CyHalfBinomialLoss"),
        ("sklearn._loss._loss", "CyHalfSquaredError"),
        ("sklearn._loss._loss", "CyHalfMultinomialLoss"),
        ("sklearn._loss.link", "Interval"),
        ("sklearn._loss.link", "IdentityLink"),
        ("sklearn._loss.link", "LogitLink"),
        ("sklearn._loss.link", "MultinomialLogit"),
        ("sklearn._loss.loss", "HalfBinomialLoss"),
        ("sklearn._loss.loss", "HalfSquaredError"),
        ("sklearn._loss.loss", "HalfMultinomialLoss"),
        ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
        ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),
        ("sklearn.preprocessing._label", "LabelEncoder"),
        # joblib's wrapper around arrays stored beside the pickle stream
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)
"""Exact (module, name) pairs any file may use; :func:`allowed_globals` adds estimators."""

_JOBLIB_ARRAY = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
}
_PUSH_STRING = {
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
}


@functools.cache
def _estimator_globals() -> frozenset[tuple[str, str]]:
    """The exact (module, class) pairs of scikit-learn's public estimators, if installed."""
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        return frozenset()
    pairs = {(cls.__module__, cls.__qualname__) for _, cls in all_estimators()}
    from sklearn.pipeline import FeatureUnion, Pipeline

    pairs |= {(cls.__module__, cls.__qualname__) for cls in (Pipeline, FeatureUnion)}
    return frozenset(pairs)


def allowed_globals(extra: Iterable[tuple[str, str]] = ()) -> frozenset[tuple[str, str]]:
    """Every (module, name) pair a checked pickle may reference."""
    return SAFE_GLOBALS | _estimator_globals() | frozenset(extra)


def _refuse(path: Path, module: str, name: str) -> PolicyViolationError:
    return PolicyViolationError(
        f"{path.name} references the global {module}.{name}, which is not allowed in a pickle",
        hint="save the model in a format that cannot run code (skops, ONNX, native); "
        "if this global is benign, add the exact pair to the allow-list",
    )


def _walk(path: Path, stream: IO[bytes], allowed: frozenset[tuple[str, str]]) -> bool:
    """Walk the opcodes; True when a joblib array wrapper was reached (raw bytes follow)."""
    recent: list[object] = []  # values pushed lately: STACK_GLOBAL takes the last two
    memo: dict[int, object] = {}
    for opcode, arg, _pos in pickletools.genops(stream):
        op = opcode.name
        if op in ("GLOBAL", "INST"):
            module, _, name = str(arg).partition(" ")
        elif op == "STACK_GLOBAL":
            if len(recent) < 2 or not all(isinstance(v, str) for v in recent[-2:]):
                raise PolicyViolationError(
                    f"{path.name} builds a global from computed values (STACK_GLOBAL)",
                    hint="this is how payloads hide what they call; the file is refused",
                )
            module, name = str(recent[-2]), str(recent[-1])
        elif op.startswith("EXT"):
            raise PolicyViolationError(
                f"{path.name} uses the copyreg extension registry ({op})",
                hint="the file is refused; save the model with skops or ONNX",
            )
        else:
            if op in _PUSH_STRING:
                recent.append(arg.decode("latin-1") if isinstance(arg, bytes) else arg)
            elif op == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[cast(int, arg)] = recent[-1] if recent else None
            elif op in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(cast(int, arg)))
            else:
                recent.append(None)
            continue
        if (module, name) not in allowed:
            raise _refuse(path, module, name)
        recent.append(None)
        if (module, name) in _JOBLIB_ARRAY:
            return True
    return False


def _restricted_joblib(path: Path, allowed: frozenset[tuple[str, str]]) -> Any:
    """Read a joblib file with the allow-list enforced in ``find_class``."""
    from joblib import numpy_pickle  # type: ignore[import-untyped]
    from joblib.numpy_pickle_utils import (  # type: ignore[import-untyped]
        _validate_fileobject_and_memmap,
    )

    class Restricted(numpy_pickle.NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in allowed:
                raise _refuse(path, module, name)
            return super().find_class(module, name)

    with (
        path.open("rb") as handle,
        _validate_fileobject_and_memmap(handle, str(path), None) as (fobj, _),
    ):
        if isinstance(fobj, str):
            raise PolicyViolationError(
                f"{path.name} is a pre-0.10 joblib file", hint="re-save it with a current joblib"
            )
        # safe: every global goes through Restricted.find_class (the allow-list) first
        return Restricted(str(path), fobj, ensure_native_byte_order=True).load()


def _check(path: Path, allowed: frozenset[tuple[str, str]]) -> bool:
    """Check ``path``; True when it is a joblib file (read by joblib's unpickler)."""
    with path.open("rb") as stream:
        first = stream.read(1)
        stream.seek(0)
        if first == b"\x80":
            try:
                if not _walk(path, stream, allowed):
                    return False
            except ValueError as exc:
                raise InvalidInputError(
                    f"{path.name} is not a valid pickle: {exc}",
                    hint="pass a pickle or joblib file",
                ) from exc
    # A joblib file (compressed, or with arrays after the wrapper opcodes).
    try:
        _restricted_joblib(path, allowed)
    except PolicyViolationError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"{path.name} is neither a pickle nor a joblib file: {type(exc).__name__}: {exc}",
            hint="pass a pickle or joblib file",
        ) from exc
    return True


def check_pickle_file(
    path: Path,
    *,
    extra_allowed: Iterable[tuple[str, str]] = (),
    allowed: Iterable[tuple[str, str]] | None = None,
) -> None:
    """Refuse a pickle or joblib file that references any global outside the allow-list.

    Nothing in a plain pickle is executed; for a joblib file only allow-listed
    constructors run (to read past its embedded arrays).

    Args:
        allowed: the exact pairs to allow instead of :func:`allowed_globals` (e.g. a
            payload that must hold plain data only, no estimator).

    Raises:
        PolicyViolationError: naming the offending global.
        InvalidInputError: the file is not a pickle.
    """
    base = allowed_globals() if allowed is None else frozenset(allowed)
    _check(path, base | frozenset(extra_allowed))


def check_pickle_bytes(data: bytes, name: str, *, allowed: Iterable[tuple[str, str]]) -> None:
    """:func:`check_pickle_file` for a pickle held in memory (a member of an archive), so
    that checking it never writes model bytes to disk.

    Raises:
        PolicyViolationError: naming the offending global, or joblib array data (which
            only a joblib file holds).
        InvalidInputError: the bytes are not a pickle.
    """
    path = Path(name)
    try:
        joblib_arrays = _walk(path, io.BytesIO(data), frozenset(allowed))
    except ValueError as exc:
        raise InvalidInputError(
            f"{name} is not a valid pickle: {exc}", hint="pass a pickle or joblib file"
        ) from exc
    if joblib_arrays:
        raise PolicyViolationError(
            f"{name} holds joblib array data, which only a joblib file holds",
            hint="the file is refused; save the model with skops or ONNX",
        )


def load_pickle_file(path: Path, *, extra_allowed: Iterable[tuple[str, str]] = ()) -> Any:
    """Check ``path`` like :func:`check_pickle_file`, then load it with the same allow-list."""
    allowed = allowed_globals(extra_allowed)
    if _check(path, allowed):
        return _restricted_joblib(path, allowed)

    class Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in allowed:
                raise _refuse(path, module, name)
            return super().find_class(module, name)

    with path.open("rb") as handle:
        # safe: checked above, and every global is resolved through the allow-list
        return Restricted(handle).load()
