"""Online-feature requests checked before any store sees them: entity ids, feature refs, sizes.

A store given a nested list, a null or an integer past 64 bits fails deep inside its
driver (SQLite: "Error binding parameter", "too many SQL variables"); these checks turn
each of them into a 4xx naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ghaf.errors import InvalidInputError, RequestTooLargeError

MAX_ENTITIES = 10_000
"""Default cap on entity rows per request (each is one bound variable in a store query)."""
MAX_REFS = 1_000
"""Most feature references one request may name."""
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
FIELDS = ("entities", "features", "feature_service", "full_feature_names")
_FIELDS = frozenset(FIELDS)
_HINT = 'send {"entities": {"customer_id": [1, 2]}, "features": ["view:feature"]}'


class FeatureRequest(NamedTuple):
    """A checked ``POST /get-online-features`` body (a tuple: built on every request)."""

    entities: dict[str, list[int | str]]
    features: list[str] | str
    full_feature_names: bool
    rows: int


def parse_request(doc: Any, *, max_entities: int = MAX_ENTITIES) -> FeatureRequest:
    """Check a decoded request body.

    Raises:
        InvalidInputError: a missing, unknown or mistyped field, named.
        RequestTooLargeError: more entity rows than ``max_entities``.
    """
    if not isinstance(doc, dict):
        raise InvalidInputError("request body must be a JSON object", hint=_HINT)
    if not _FIELDS.issuperset(doc):
        unknown = sorted(set(doc) - _FIELDS)
        raise InvalidInputError(
            f"unknown field {unknown[0][:64]!r} in the request",
            hint=f"fields are: {', '.join(FIELDS)}",
        )
    entities = doc.get("entities")
    if not isinstance(entities, dict) or not entities:
        raise InvalidInputError(
            "field 'entities' must be an object of key -> list of values", hint=_HINT
        )
    checked, rows = entity_columns(entities, max_entities=max_entities)
    full = doc.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise InvalidInputError(
            "field 'full_feature_names' must be true or false", hint="or leave it out"
        )
    return FeatureRequest(checked, _features(doc), full, rows)


def entity_columns(
    entities: Mapping[str, Any], *, max_entities: int = MAX_ENTITIES
) -> tuple[dict[str, list[int | str]], int]:
    """Entity key -> ids, every column a flat list of the same length; and that length."""
    rows: int | None = None
    checked: dict[str, list[int | str]] = {}
    for key, values in entities.items():
        field = f"entities.{key[:64]}"
        if not isinstance(values, list):
            raise InvalidInputError(
                f"field {field!r} must be a list of ids", hint=f'e.g. "{key[:64]}": [1, 2]'
            )
        if len(values) > max_entities:
            raise RequestTooLargeError(
                f"field {field!r} has {len(values)} entities; the limit is {max_entities} "
                "per request",
                hint="split the request, or start the server with a larger --max-entities",
            )
        checked[key] = entity_ids(field, values)
        if rows is not None and len(values) != rows:
            raise InvalidInputError(
                f"field {field!r} has {len(values)} values; the other keys have {rows}",
                hint="send one value per key for every entity row",
            )
        rows = len(values)
    return checked, rows or 0


def entity_ids(field: str, values: list[Any]) -> list[int | str]:
    """``values`` if each is a string or a 64-bit integer (no null, bool, float or nesting)."""
    for index, value in enumerate(values):
        kind = type(value)
        if kind is str or (kind is int and _INT64_MIN <= value <= _INT64_MAX):
            continue
        raise InvalidInputError(
            f"field {field!r}: entry {index} is {_describe(value)}; ids are strings or "
            "64-bit integers",
            hint="send one flat list of ids per key",
        )
    return values


def _features(doc: dict[str, Any]) -> list[str] | str:
    service = doc.get("feature_service")
    refs = doc.get("features")
    if service is not None and refs is not None:
        raise InvalidInputError(
            "send either 'features' or 'feature_service', not both",
            hint="a feature service names its features itself",
        )
    if service is not None:
        if not isinstance(service, str) or not service:
            raise InvalidInputError(
                "field 'feature_service' must be a service name", hint='e.g. "fraud_v1"'
            )
        return service
    if refs is None:
        raise InvalidInputError("field 'features' or 'feature_service' is required", hint=_HINT)
    if not isinstance(refs, list) or not refs:
        raise InvalidInputError(
            "field 'features' must be a non-empty list of 'view:feature' strings", hint=_HINT
        )
    if len(refs) > MAX_REFS:
        raise RequestTooLargeError(
            f"field 'features' names {len(refs)} features; the limit is {MAX_REFS}",
            hint="use a feature service, or split the request",
        )
    for index, ref in enumerate(refs):
        if not isinstance(ref, str) or not ref:
            raise InvalidInputError(
                f"field 'features': entry {index} is {_describe(ref)}",
                hint="each entry is a 'view:feature' or 'view' string",
            )
    return refs


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"{value} (outside 64-bit integers)"
    if isinstance(value, float):
        return f"a number with a fraction or exponent ({value!r})"
    if isinstance(value, list):
        return "a nested list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "an empty string"
    return type(value).__name__
