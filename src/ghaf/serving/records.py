"""The records endpoint's input: objects keyed by column, or entity ids to look features up."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ghaf.errors import InvalidInputError
from ghaf.serving.base import Array, Signature

if TYPE_CHECKING:
    from ghaf.serving.app import Deployment


class FeatureLookup(Protocol):
    """Fetches feature columns for entity ids (one vectorized call per request)."""

    def lookup(self, entity_ids: Sequence[Any], columns: Sequence[str]) -> dict[str, list[Any]]: ...


class OnlineStoreLookup:
    """Features from the online store through ``ghaf.features.get_online_features``."""

    def __init__(self, platform: Any, entity_key: str, features: Sequence[str]) -> None:
        self.platform = platform
        self.entity_key = entity_key
        self.features = list(features)
        self._get = importlib.import_module("ghaf.features").get_online_features

    def lookup(self, entity_ids: Sequence[Any], columns: Sequence[str]) -> dict[str, list[Any]]:
        rows = [{self.entity_key: entity} for entity in entity_ids]
        result = self._get(self.platform, rows, self.features)
        table: Mapping[str, Any] = result.to_pydict() if hasattr(result, "to_pydict") else result
        out: dict[str, list[Any]] = {}
        for column in columns:
            match = column if column in table else _suffix_match(table, column)
            if match is None:
                raise InvalidInputError(
                    f"the online store has no feature {column!r}",
                    hint="materialize the feature view the model was trained on",
                )
            out[column] = list(table[match])
        return out


def _suffix_match(table: Mapping[str, Any], column: str) -> str | None:
    for key in table:
        if key.split(":")[-1] == column or key.split("__")[-1] == column:
            return key
    return None


class DictLookup:
    """Features from an in-memory mapping ``entity id -> {column: value}`` (tests, demos)."""

    def __init__(self, table: Mapping[Any, Mapping[str, Any]]) -> None:
        self.table = table

    def lookup(self, entity_ids: Sequence[Any], columns: Sequence[str]) -> dict[str, list[Any]]:
        missing = [e for e in entity_ids if e not in self.table]
        if missing:
            raise InvalidInputError(
                f"unknown entity {missing[0]!r}", hint="send ids that exist in the online store"
            )
        return {c: [self.table[e].get(c) for e in entity_ids] for c in columns}


async def records_to_matrix(records: Any, signature: Signature, deployment: Deployment) -> Array:
    """Rows x features from a list of objects; entity-only rows get features looked up."""
    if not isinstance(records, list) or not records:
        raise InvalidInputError(
            "'records' must be a non-empty list of objects",
            hint='send [{"column": value, ...}] or {"records": [...]}',
        )
    columns = list(signature.columns)
    if not all(isinstance(record, dict) for record in records):
        raise InvalidInputError("each record must be an object", hint="{column: value}")
    key = deployment.entity_key
    if key is not None and deployment.features is not None and columns[0] not in records[0]:
        ids = []
        for index, record in enumerate(records):
            if key not in record:
                raise InvalidInputError(f"record {index} has no {key!r}", hint="send entity ids")
            ids.append(record[key])
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, deployment.features.lookup, ids, columns)
        try:
            matrix = np.array([found[c] for c in columns], dtype=np.float64).T
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                "looked-up features are not all numeric", hint="check the feature view"
            ) from exc
        return matrix
    try:
        return np.array([[record[c] for c in columns] for record in records], dtype=np.float64)
    except KeyError as exc:
        raise InvalidInputError(
            f"a record is missing column {exc.args[0]!r}",
            hint=f"each record needs: {', '.join(columns)}",
        ) from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"records hold a non-numeric value: {exc}", hint="send numbers for every feature"
        ) from exc
