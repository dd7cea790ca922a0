"""Model file formats recognised by their content, never by their file name.

A pickle renamed ``model.skops`` is still a pickle: it runs code when a careless
loader opens it. Every model file is checked against the format its flavor expects
before anything loads it (at registration and again at load), and a file that is
something else is refused naming the file and what it really is. The checks read
structure only (magic bytes, headers, the archive's schema); none executes anything
from the file.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from ghaf.errors import (
    GhafError,
    InvalidInputError,
    MissingDependencyError,
    PolicyViolationError,
)

FORMATS: dict[str, str] = {
    "skops": "a skops archive",
    "onnx": "an ONNX model (ModelProto)",
    "lightgbm": "a LightGBM text model",
    "xgboost": "an XGBoost model (UBJSON or JSON)",
    "safetensors": "a safetensors file",
    "data-pickle": "a pickle of plain data",
    "python": "Python source",
}
"""Format name -> how it reads in a message."""

FILE_FLAVORS: dict[str, str] = {
    "skops": "skops",
    "onnx": "onnx",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
}
"""A single model file's format -> the flavor that registers it."""

SUFFIX_FORMATS: dict[str, str] = {
    ".skops": "skops",
    ".onnx": "onnx",
    ".ubj": "xgboost",
    ".lgb": "lightgbm",
    ".lgb.txt": "lightgbm",
    ".safetensors": "safetensors",
}
"""What a file name claims; a claim that the content does not back is refused."""

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_HEAD = 64
_MAX_SAFETENSORS_HEADER = 100 << 20  # the format's own limit
_COMPRESSED = {
    b"\x1f\x8b": "gzip-compressed data (e.g. a compressed joblib pickle)",
    b"BZh": "bzip2-compressed data (e.g. a compressed joblib pickle)",
    b"\xfd7zXZ": "xz-compressed data (e.g. a compressed joblib pickle)",
    b"\x04\x22\x4d\x18": "lz4-compressed data (e.g. a compressed joblib pickle)",
    b"ZF": "zlib-compressed joblib data (a pickle)",
}
_UBJ_LENGTH = {b"i": 1, b"U": 1, b"I": 2, b"l": 4, b"L": 8}


def _head(path: Path, size: int = _HEAD) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def claimed_format(name: str) -> str | None:
    """The format a file name claims by its suffix (``model.lgb.txt`` -> lightgbm), if any."""
    for suffix in sorted(SUFFIX_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIX_FORMATS[suffix]
    return None


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "a damaged zip archive"
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "a PyTorch pickle archive (torch.save): loading it runs code"
    if any(n.endswith("serialized_exported_program.json") or "archive_format" in n for n in names):
        return "a torch.export archive (.pt2)"
    if "schema.json" in names:
        return "a skops archive"
    return "a zip archive"


def identify(path: Path) -> str:
    """What ``path`` holds, in words, judged by its content (for messages)."""
    head = _head(path)
    if not head:
        return "an empty file"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return f"a pickle (protocol {head[1]}): loading it runs code"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    for magic, words in _COMPRESSED.items():
        if head.startswith(magic):
            return words
    for name in ("lightgbm", "safetensors", "xgboost", "onnx"):
        if _problem(path, name) is None:
            return FORMATS[name]
    if _old_pickle(path):
        return "a pickle (protocol 0/1): loading it runs code"
    if head.lstrip()[:1] in (b"{", b"["):
        return "JSON data"
    return "unrecognised content"


def _old_pickle(path: Path) -> bool:
    """A text-protocol pickle: the opcodes parse to the end (read only, nothing runs)."""
    import pickletools  # nosec B403 - reads opcodes, executes nothing

    if path.stat().st_size > 1 << 20:
        return False
    try:
        with path.open("rb") as handle:
            ops = list(pickletools.genops(handle))
    except Exception:  # noqa: BLE001 - anything that does not parse is not a pickle
        return False
    return bool(ops) and ops[-1][0].name == "STOP" and len(ops) > 1


def _problem(path: Path, fmt: str) -> str | None:
    """Why ``path`` is not ``fmt`` (None when it is)."""
    check = _CHECKS.get(fmt)
    if check is None:
        return None
    try:
        return check(path)
    except GhafError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: any parse failure is an answer
        return f"it cannot be read as {FORMATS[fmt]}: {type(exc).__name__}: {exc}"


def format_problem(path: Path, fmt: str, *, name: str | None = None) -> str | None:
    """Why ``path`` is not ``fmt`` (a key of :data:`FORMATS`), naming the file and what it
    really is; None when it is."""
    shown = name or path.name
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"{shown}: unknown model file format {fmt!r}", hint=f"use one of {', '.join(FORMATS)}"
        )
    problem = _problem(path, fmt)
    if problem is None:
        return None
    return f"{shown} is {identify(path)}, not {FORMATS[fmt]} ({problem})"


def check_format(path: Path, fmt: str, *, name: str | None = None) -> None:
    """Refuse ``path`` unless its content is ``fmt`` (a key of :data:`FORMATS`).

    Args:
        name: how the file is named in the message (default: its file name).

    Raises:
        PolicyViolationError: naming the file, the expected format and what it really is.
    """
    problem = format_problem(path, fmt, name=name)
    if problem is not None:
        raise PolicyViolationError(
            problem,
            hint="save the model with its flavor (ghaf.models.save_model) in a format that "
            "cannot run code; a file's name never decides how it is read",
        )


TORCH_WEIGHT_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch", "Size"),
        ("torch.storage", "UntypedStorage"),
    }
    | {
        ("torch", f"{kind}Storage")
        for kind in (
            *("Float", "Double", "Half", "BFloat16"),
            *("Long", "Int", "Short", "Char", "Byte", "Bool"),
        )
    }
)
"""What a ``torch.save`` of tensors references (with the data-pickle containers): what
``torch.load(weights_only=True)`` would accept, and nothing that runs code."""


def torch_archive_problems(path: Path, *, name: str | None = None) -> list[str]:
    """Pickles inside a ``torch.export`` archive (``.pt2``) that reference more than tensors.

    ``torch.export.load`` unpickles pickled weights and constants with
    ``weights_only=False``, so a ``.pt2`` is code unless every pickle in it (nested
    ``torch.save`` archives, members its weight configs mark ``use_pickle``, legacy
    ``.pt`` files) holds tensors only.
    """
    shown = name or path.name
    problems: list[str] = []
    with zipfile.ZipFile(path) as archive:
        pickled = {
            n.rsplit("/", 1)[0] + "/" + str(entry.get("path_name", ""))
            for n in archive.namelist()
            if n.endswith("_config.json")
            for entry in _configs(archive.read(n))
            if entry.get("use_pickle")
        }
        for member in archive.namelist():
            data = archive.read(member)
            if data.startswith(b"PK\x03\x04"):
                problems += _scan_torch_save(data, f"{shown}!{member}")
            elif member in pickled or member.endswith((".pkl", ".pt")):
                problems += _scan_pickle_bytes(data, f"{shown}!{member}")
    return problems


def _configs(raw: bytes) -> list[dict[str, object]]:
    try:
        body = json.loads(raw)
    except ValueError:
        return []
    config = body.get("config") if isinstance(body, dict) else None
    return [e for e in config.values() if isinstance(e, dict)] if isinstance(config, dict) else []


def _scan_torch_save(data: bytes, shown: str) -> list[str]:
    import io

    problems = []
    with zipfile.ZipFile(io.BytesIO(data)) as inner:
        for member in inner.namelist():
            if member.endswith(".pkl"):
                problems += _scan_pickle_bytes(inner.read(member), f"{shown}!{member}")
    return problems


def _scan_pickle_bytes(data: bytes, shown: str) -> list[str]:
    from ghaf.models.safe_pickle import SAFE_GLOBALS
    from ghaf.security.pickles import check_pickle_bytes

    try:  # in memory: model bytes never go to a temporary file
        check_pickle_bytes(data, "member.pkl", allowed=SAFE_GLOBALS | TORCH_WEIGHT_GLOBALS)
    except GhafError as exc:
        return [f"{shown}: {exc.headline.replace('member.pkl', 'this pickle')}"]
    return []


def pickle_like(path: Path) -> str | None:
    """``"pickle"`` for a pickle or joblib file (by content, or a pickle's usual name),
    ``"torch"`` for a ``torch.save`` archive, ``"torch-export"`` for a ``.pt2``, else None."""
    head = _head(path, 8)
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith(b"PK\x03\x04"):
        kind = _zip_kind(path)
        if kind.startswith("a PyTorch pickle"):
            return "torch"
        return "torch-export" if kind.startswith("a torch.export") else None
    if head.startswith(b"ZF"):  # joblib's own zlib container
        return "pickle"
    return "pickle" if path.name.endswith(PICKLE_SUFFIXES) else None


def flavor_of_file(path: Path) -> str:
    """The flavor that registers the single model file ``path``, judged by its content.

    Raises:
        PolicyViolationError: the content is not a model format Ghaf loads, or it is not
            the format the file's name claims.
    """
    claimed = claimed_format(path.name)
    if claimed is not None and claimed in FILE_FLAVORS:
        check_format(path, claimed)
        return FILE_FLAVORS[claimed]
    for fmt, flavor in FILE_FLAVORS.items():
        if _problem(path, fmt) is None:
            return flavor
    raise PolicyViolationError(
        f"{path.name} is {identify(path)}, not a model format Ghaf registers",
        hint="register a skops, ONNX, LightGBM text or XGBoost file, or a model directory "
        "saved by ghaf.models.save_model",
    )


# One check per format: None when the file is that format, else the reason it is not.


def _skops(path: Path) -> str | None:
    if not _head(path, 4).startswith(b"PK\x03\x04"):
        return "a skops file is a zip archive"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if "schema.json" not in names:
            return "the archive has no schema.json"
        schema = json.loads(archive.read("schema.json"))
    if not isinstance(schema, dict) or not {"__loader__", "protocol"} <= set(schema):
        return "its schema.json is not a skops schema"
    from ghaf.models.skops_files import skops_io

    skops_io().get_untrusted_types(file=path)  # skops' own reading of the schema
    return None


def _onnx(path: Path) -> str | None:
    head = _head(path, 1)
    if head != b"\x08":  # field 1 (ir_version, varint): what every serializer writes first
        return "an ONNX model starts with its ir_version"
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is in the ml extra
        raise MissingDependencyError("onnx", "ml") from exc
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's decode errors have no common base
        return f"it does not parse as ModelProto: {type(exc).__name__}"
    if model.ir_version <= 0 or not model.opset_import or not model.graph.output:
        return "the ModelProto has no ir_version, opset or graph outputs"
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            if not _inside(location):
                return f"initializer {tensor.name} reads external data from {location!r}"
    return None


def _inside(relative: str) -> bool:
    """A relative path that stays inside its directory."""
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def _lightgbm(path: Path) -> str | None:
    lines = _head(path, 256).split(b"\n")
    if len(lines) < 2 or lines[0].rstrip(b"\r") != b"tree" or not lines[1].startswith(b"version="):
        return "a LightGBM text model starts with 'tree' and 'version='"
    return None


def _xgboost(path: Path) -> str | None:
    head = _head(path)
    if head[:1] != b"{":
        return "an XGBoost model is a UBJSON or JSON object"
    if head[1:2] in _UBJ_LENGTH:
        width = _UBJ_LENGTH[head[1:2]]
        size = int.from_bytes(head[2 : 2 + width], "big", signed=True)
        key = head[2 + width : 2 + width + size]
        if key in (b"learner", b"version"):
            return None
        return f"the UBJSON object starts with key {key[:20]!r}, not learner/version"
    if head[1:].lstrip()[:1] == b'"':
        body = json.loads(path.read_bytes())
        if isinstance(body, dict) and "learner" in body:
            return None
        return "the JSON object has no learner"
    return "an XGBoost model is a UBJSON or JSON object"


def _safetensors(path: Path) -> str | None:
    size = path.stat().st_size
    head = _head(path, 9)
    if len(head) < 9:
        return "the file is shorter than a safetensors header"
    (length,) = struct.unpack("<Q", head[:8])
    if length < 2 or length > min(size - 8, _MAX_SAFETENSORS_HEADER) or head[8:9] != b"{":
        return "the first 8 bytes are not the length of a JSON header"
    with path.open("rb") as handle:
        handle.seek(8)
        header = json.loads(handle.read(length))
    if not isinstance(header, dict):
        return "the header is not a JSON object"
    data = size - 8 - length
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            return f"tensor {key!r} has no dtype/shape/data_offsets"
        start, end = entry["data_offsets"]
        if not 0 <= start <= end <= data:
            return f"tensor {key!r} points outside the file"
    return None


def _data_pickle(path: Path) -> str | None:
    from ghaf.models.safe_pickle import SAFE_GLOBALS
    from ghaf.security.pickles import check_pickle_file

    if _head(path, 1) != b"\x80":
        return "a data pickle starts with a protocol opcode"
    try:
        check_pickle_file(path, allowed=SAFE_GLOBALS)
    except PolicyViolationError as exc:
        return exc.headline
    except InvalidInputError as exc:
        return exc.headline
    return None


def _python(path: Path) -> str | None:
    import ast

    try:
        ast.parse(path.read_bytes().decode("utf-8"), filename=path.name)
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except SyntaxError as exc:
        return f"it is not valid Python: line {exc.lineno}: {exc.msg}"
    return None


_CHECKS: dict[str, Callable[[Path], str | None]] = {
    "skops": _skops,
    "onnx": _onnx,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
    "safetensors": _safetensors,
    "data-pickle": _data_pickle,
    "python": _python,
}
