"""Open Inference Protocol v2 bodies: JSON and the binary tensor data extension.

A binary request carries an ``Inference-Header-Content-Length`` header: the first that
many bytes are the JSON header, the rest the raw little-endian tensors of the inputs
whose ``parameters.binary_data_size`` is set, in order. Responses are binary when the
request asks (``outputs[].parameters.binary_data`` or ``parameters.binary_data_output``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from ghaf.errors import InvalidInputError
from ghaf.serving.base import NUMPY_TO_OIP, OIP_TO_NUMPY, Array, Signature

_NUMERIC = {name for name in OIP_TO_NUMPY if name != "BOOL"}
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY
_FLOAT_MAX = {size: float(np.finfo(f"f{size}").max) for size in (2, 4, 8)}
MAX_DIMS = 8
"""Most dimensions a tensor may declare (tabular models take 2)."""


@dataclass
class InferRequest:
    """A decoded inference request."""

    id: str | None
    inputs: dict[str, Array]
    binary_outputs: dict[str, bool] = field(default_factory=dict)
    binary_default: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)


def decode_infer(body: bytes, header_length: int | None) -> InferRequest:
    """Parse a JSON or binary-extension request into NumPy arrays (no signature checks yet).

    Raises:
        InvalidInputError: malformed JSON, bad shapes, data not matching the datatype.
    """
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise InvalidInputError(
                f"Inference-Header-Content-Length {header_length} exceeds the body "
                f"({len(body)} bytes)",
                hint="send the JSON header length in bytes",
            )
        head, blob = body[:header_length], memoryview(body)[header_length:]
    else:
        head, blob = body, memoryview(b"")
    try:
        doc = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(
            f"request body is not valid JSON: {exc}", hint="send an OIP v2 inference request"
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise InvalidInputError(
            "request has no 'inputs' list", hint='send {"inputs": [{"name", "shape", ...}]}'
        )
    inputs: dict[str, Array] = {}
    offset = 0
    for raw in doc["inputs"]:
        name, array, used = _decode_tensor(raw, blob, offset)
        offset += used
        inputs[name] = array
    if offset != len(blob):
        raise InvalidInputError(
            f"binary data has {len(blob) - offset} bytes no input claims",
            hint="set each binary input's parameters.binary_data_size",
        )
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInputError("'parameters' must be an object", hint="send a JSON object")
    outputs = doc.get("outputs") or []
    if not isinstance(outputs, list):
        raise InvalidInputError("'outputs' must be a list", hint='[{"name": "..."}]')
    wanted: dict[str, bool] = {}
    for out in outputs:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise InvalidInputError("each output needs a 'name'", hint='{"name": "..."}')
        out_params = out.get("parameters") or {}
        if not isinstance(out_params, dict):
            raise InvalidInputError(
                f"output {out['name']!r}: 'parameters' must be an object",
                hint='{"binary_data": true}',
            )
        wanted[out["name"]] = bool(out_params.get("binary_data", False))
    request_id = doc.get("id")
    return InferRequest(
        id=str(request_id) if request_id is not None else None,
        inputs=inputs,
        binary_outputs=wanted,
        binary_default=bool(params.get("binary_data_output", False)),
        parameters=params,
    )


def _decode_tensor(raw: Any, blob: memoryview, offset: int) -> tuple[str, Array, int]:
    if not isinstance(raw, dict):
        raise InvalidInputError("each input must be an object", hint="name, shape, datatype, data")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError("an input has no 'name'", hint="name every input tensor")
    shape = raw.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInputError(
            f"input {name!r}: 'shape' must be a list of at most {MAX_DIMS} non-negative integers",
            hint="e.g. [1, 20] for one row of 20 features",
        )
    datatype = raw.get("datatype")
    if not isinstance(datatype, str) or datatype not in OIP_TO_NUMPY:
        raise InvalidInputError(
            f"input {name!r}: datatype {datatype!r} is not supported",
            hint="use FP32, FP64 or an integer type for numeric features",
        )
    dtype = np.dtype(OIP_TO_NUMPY[datatype]).newbyteorder("<")
    count = math.prod(shape)
    params = raw.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size != count * dtype.itemsize:
            raise InvalidInputError(
                f"input {name!r}: binary_data_size {size} does not match shape {shape} "
                f"of {datatype} ({count * dtype.itemsize} bytes)",
                hint="binary_data_size must be elements x element size",
            )
        if offset + size > len(blob):
            raise InvalidInputError(
                f"input {name!r}: binary data is truncated", hint="send every tensor's bytes"
            )
        array = np.frombuffer(blob[offset : offset + size], dtype=dtype)
        check_range(f"input {name!r}", array, datatype)
        return name, array.reshape(shape), size
    if "data" not in raw:
        raise InvalidInputError(f"input {name!r} has no 'data'", hint="send the tensor's values")
    array = numbers(f"input {name!r}", raw["data"], datatype)
    if array.size != count:
        raise InvalidInputError(
            f"input {name!r}: {array.size} values do not fill shape {shape} ({count})",
            hint="shape must multiply out to the number of values",
        )
    return name, array.reshape(shape), 0


def numbers(field: str, data: Any, datatype: str) -> Array:
    """``data`` (nested lists from JSON) as an array of the OIP ``datatype``, checked.

    Refuses what NumPy would otherwise turn into something else without a word: null
    (NaN), ragged nesting, floats for integer types and values outside the type's range
    (``1e308`` as FP32 is infinity). A number sent as a JSON string (``"1.5"``) is read
    as that number.

    Raises:
        InvalidInputError: naming ``field`` and the first offending element.
    """
    target = np.dtype(OIP_TO_NUMPY[datatype])
    if target.kind == "f":
        # The hot path: one conversion pass (telling NumPy the type spares it a pass to
        # discover one), then min/max, which NaN from a null and out-of-range values fail.
        try:
            wide = np.asarray(data, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            wide = None
        if wide is not None and _fits(wide, _FLOAT_MAX[target.itemsize]):
            return wide.astype(target, copy=False)
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(
            f"{field}: data is not a rectangular list of numbers ({_first_bad(data)})",
            hint="nest lists evenly (or send a flat list and the shape)",
        ) from exc
    kind = array.dtype.kind
    if kind not in "biuf" or (target.kind == "b" and kind != "b"):
        wanted = "true/false" if target.kind == "b" else "numbers"
        raise InvalidInputError(
            f"{field}: {datatype} data must be {wanted}; {_first_bad(data, target.kind)}",
            hint=f"send {wanted} only, one per element (no null, strings or objects)",
        )
    if target.kind in "iu" and kind == "f":
        raise InvalidInputError(
            f"{field}: {datatype} data must be integers; {_first_bad(data, 'i')}",
            hint=f"send whole numbers or declare the input as FP32/FP64 instead of {datatype}",
        )
    check_range(field, array, datatype)
    return array.astype(target, copy=False)


def _fits(array: Array, limit: float) -> bool:
    """Every value finite and within ``±limit`` (NaN fails both comparisons)."""
    if not array.size:
        return True
    return bool(-limit <= array.min()) and bool(array.max() <= limit)


def check_range(field: str, array: Array, datatype: str) -> None:
    """Refuse values that do not fit ``datatype`` (and non-finite floats).

    Raises:
        InvalidInputError: naming ``field`` and the first offending element.
    """
    target = np.dtype(OIP_TO_NUMPY[datatype])
    if not array.size or target.kind == "b" or array.dtype.kind == "b":
        return
    flat = array.reshape(-1)
    if target.kind == "f":
        limit = float(np.finfo(target).max)
        with np.errstate(invalid="ignore", over="ignore"):
            bad = ~(np.abs(flat) <= limit)  # NaN and infinity fail the comparison too
        if not bad.any():
            return
        index = int(np.argmax(bad))
        raise InvalidInputError(
            f"{field}: value {float(flat[index]):.6g} at position {index} is not a finite "
            f"{datatype} "
            f"(at most {limit:.6g} in magnitude)",
            hint=f"send finite values within {datatype}'s range, or declare FP64",
        )
    info = np.iinfo(target)
    if array.dtype.kind == "f":
        return  # refused earlier for JSON; binary data already has the integer type
    low, high = int(flat.min()), int(flat.max())
    if low < info.min or high > info.max:
        index = int(np.argmax((flat < info.min) | (flat > info.max)))
        raise InvalidInputError(
            f"{field}: value {int(flat[index])} at position {index} is outside {datatype} "
            f"({info.min}..{info.max})",
            hint=f"send values within {datatype}'s range or declare a wider type",
        )


def _first_bad(data: Any, kind: str = "f") -> str:
    """Where the first element that is not a number (or bool for BOOL) sits, for messages."""
    stack: list[tuple[str, Any]] = [("data", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
            continue
        ok = (
            isinstance(value, bool)
            if kind == "b"
            else (isinstance(value, int | float) and not (kind == "i" and isinstance(value, float)))
        )
        if not ok:
            return f"{path} is {describe(value)}"
    return "the values do not fit one integer type" if kind == "i" else "rows differ in length"


def describe(value: Any) -> str:
    """A JSON value as a message names it: ``null``, ``a string ('abc')``, ``an object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:20]!r})"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"[:40]


def to_matrix(request: InferRequest, signature: Signature) -> Array:
    """The model's 2-D input from the request's tensors, checked against ``signature``.

    Accepts the signature's input tensor (rows x features), or one 1-D tensor per column.
    Values must fit the model's declared input type, whatever type the request declared.
    """
    spec = signature.inputs[0]
    matrix = _matrix(request, signature)
    if matrix.shape[0] == 0:
        raise InvalidInputError(f"input {spec.name!r} has no rows", hint="send at least one row")
    declared = OIP_TO_NUMPY.get(spec.datatype)
    if declared is not None and matrix.dtype != np.dtype(declared):
        check_range(f"input {spec.name!r}", matrix, spec.datatype)
    return matrix


def _matrix(request: InferRequest, signature: Signature) -> Array:
    spec = signature.inputs[0]
    n_features = signature.n_features
    if spec.name in request.inputs:
        extra = sorted(set(request.inputs) - {spec.name})
        if extra:
            raise InvalidInputError(
                f"unexpected input {extra[0]!r}", hint=f"this model takes {spec.name!r}"
            )
        array = request.inputs[spec.name]
        if array.ndim != 2 or (n_features and array.shape[1] != n_features):
            raise InvalidInputError(
                f"input {spec.name!r} has shape {list(array.shape)}; expected [-1, {n_features}]",
                hint=f"send rows of {n_features} features",
            )
        return array
    if signature.columns and set(request.inputs) <= set(signature.columns):
        missing = [c for c in signature.columns if c not in request.inputs]
        if missing:
            raise InvalidInputError(f"input {missing[0]!r} is missing", hint="send every column")
        cols = [request.inputs[c].reshape(-1) for c in signature.columns]
        if len({len(c) for c in cols}) != 1:
            raise InvalidInputError("column inputs differ in length", hint="one value per row")
        return np.column_stack(cols)
    unknown = sorted(set(request.inputs))[0]
    raise InvalidInputError(
        f"unknown input {unknown!r}", hint=f"this model takes {spec.name!r} [-1, {n_features}]"
    )


def encode_infer(
    model: str,
    version: str,
    request: InferRequest,
    outputs: Mapping[str, Array],
) -> tuple[bytes, int | None]:
    """The response body and, for binary responses, its JSON header length."""
    if request.binary_outputs:
        unknown = sorted(set(request.binary_outputs) - set(outputs))
        if unknown:
            raise InvalidInputError(
                f"unknown output {unknown[0]!r}", hint=f"outputs are: {', '.join(outputs)}"
            )
        selected = {name: outputs[name] for name in request.binary_outputs}
    else:
        selected = dict(outputs)
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, value in selected.items():
        array = np.ascontiguousarray(value)
        entry: dict[str, Any] = {
            "name": name,
            "datatype": NUMPY_TO_OIP.get(array.dtype.name, "FP64"),
            "shape": list(array.shape),
        }
        if request.binary_outputs.get(name, request.binary_default):
            raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = array.reshape(-1)
        tensors.append(entry)
    doc: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": tensors}
    if request.id is not None:
        doc["id"] = request.id
    head = orjson.dumps(doc, option=_JSON_OPTS)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def error_body(message: str) -> bytes:
    """The OIP error body."""
    return orjson.dumps({"error": message})
