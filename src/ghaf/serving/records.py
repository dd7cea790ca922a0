"""The records endpoint's input: objects keyed by column, or entity ids to look features up."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ghaf.errors import InvalidInputError
from ghaf.features.validation import entity_ids
from ghaf.serving.base import OIP_TO_NUMPY, Array, Signature
from ghaf.serving.protocol import describe, numbers

if TYPE_CHECKING:
    from ghaf.serving.app import Deployment


class FeatureLookup(Protocol):
    """Fetches feature columns for entity ids in one vectorized call."""

    def lookup(self, entity_ids: Sequence[Any], columns: Sequence[str]) -> dict[str, list[Any]]: ...


class OnlineStoreLookup:
    """Features from the online store through ``ghaf.features.online.get_online_features``.

    ``features`` are ``"view:feature"`` refs (or a feature service name); a model column
    matches the output named after the feature. Unknown entities come back null (NaN).
    """

    def __init__(self, platform: Any, entity_key: str, features: Sequence[str] | str) -> None:
        self.platform = platform
        self.entity_key = entity_key
        self.features: Sequence[str] | str = (
            features if isinstance(features, str) else list(features)
        )
        from ghaf.features.online import get_online_features  # the feature store, when used

        self._get = get_online_features

    def lookup(self, entity_ids: Sequence[Any], columns: Sequence[str]) -> dict[str, list[Any]]:
        result = self._get(self.platform, {self.entity_key: list(entity_ids)}, self.features)
        table: Mapping[str, list[Any]] = result.columns
        out: dict[str, list[Any]] = {}
        for column in columns:
            match = column if column in table else _suffix_match(table, column)
            if match is None or match == self.entity_key:
                raise InvalidInputError(
                    f"the online store has no feature {column!r}",
                    hint="serve with the feature refs the model was trained on (--features)",
                )
            out[column] = table[match]
        return out


def _suffix_match(table: Mapping[str, Any], column: str) -> str | None:
    for key in table:
        if key.split(":")[-1] == column or key.split("__")[-1] == column:
            return key
    return None


@dataclass
class _Pending:
    ids: list[Any]
    columns: tuple[str, ...]
    future: asyncio.Future[dict[str, list[Any]]]


class FeatureJoiner:
    """Coalesces concurrent entity lookups: one online-store call per batch of requests.

    While one lookup runs in the worker thread, new requests queue; the next lookup
    fetches every queued request's ids (and the union of their columns) at once, then
    hands each request its slice.
    """

    def __init__(self, lookup: FeatureLookup, max_ids: int = 8192) -> None:
        self.lookup = lookup
        self.max_ids = max_ids
        self.lookups = 0
        """Online-store calls made (tests and metrics)."""
        self.requests = 0
        self._queue: deque[_Pending] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghaf-features")

    async def fetch(self, ids: list[Any], columns: Sequence[str]) -> dict[str, list[Any]]:
        """``columns`` for ``ids``, looked up together with whatever else is queued."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run(), name="ghaf-feature-joiner")
        future: asyncio.Future[dict[str, list[Any]]] = loop.create_future()
        self._queue.append(_Pending(ids, tuple(columns), future))
        self.requests += 1
        assert self._wakeup is not None  # nosec B101
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        assert self._wakeup is not None  # nosec B101
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch: list[_Pending] = []
            total = 0
            while self._queue and (not batch or total + len(self._queue[0].ids) <= self.max_ids):
                item = self._queue.popleft()
                batch.append(item)
                total += len(item.ids)
            columns = list(dict.fromkeys(c for item in batch for c in item.columns))
            ids = [entity for item in batch for entity in item.ids]
            try:
                self.lookups += 1
                found = await loop.run_in_executor(self._executor, self.lookup.lookup, ids, columns)
            except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            start = 0
            for item in batch:
                end = start + len(item.ids)
                if not item.future.done():
                    item.future.set_result({c: found[c][start:end] for c in item.columns})
                start = end

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


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
    """Rows x features from a list of objects; entity-only rows get features looked up.

    Values a client sends must be numbers within the model's input type (no null, no
    strings, no nesting); looked-up features may be null (NaN: an unknown entity).
    """
    if not isinstance(records, list) or not records:
        raise InvalidInputError(
            "'records' must be a non-empty list of objects",
            hint='send [{"column": value, ...}] or {"records": [...]}',
        )
    columns = list(signature.columns)
    if not all(isinstance(record, dict) for record in records):
        raise InvalidInputError("each record must be an object", hint="{column: value}")
    datatype = signature.inputs[0].datatype if signature.inputs else "FP64"
    datatype = datatype if datatype in OIP_TO_NUMPY else "FP64"
    key = deployment.entity_key
    joiner = deployment.joiner
    missing = [c for c in columns if c not in records[0]]
    if key is not None and joiner is not None and missing and key in records[0]:
        ids = []
        for index, record in enumerate(records):
            if key not in record:
                raise InvalidInputError(f"record {index} has no {key!r}", hint="send entity ids")
            ids.append(record[key])
        entity_ids(f"records[].{key}", ids)
        found = await joiner.fetch(ids, missing)
        given = [c for c in columns if c not in found]
        matrix = np.empty((len(records), len(columns)), dtype=np.float64)
        if given:
            matrix[:, [columns.index(c) for c in given]] = _values(records, given, datatype, key)
        for column in found:
            try:
                matrix[:, columns.index(column)] = np.asarray(found[column], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"feature {column!r} for {key} is not numeric: {exc}",
                    hint="check the feature view",
                ) from exc
        return matrix
    return _values(records, columns, datatype, None)


def _values(
    records: list[dict[str, Any]], columns: list[str], datatype: str, key: str | None
) -> Array:
    """The clients' values of ``columns``, checked to fit ``datatype``, record by record."""
    try:
        rows = [[record[c] for c in columns] for record in records]
    except KeyError as exc:
        needed = ", ".join(columns if key is None else [key, *columns])
        raise InvalidInputError(
            f"a record is missing column {exc.args[0]!r}", hint=f"each record needs: {needed}"
        ) from exc
    try:
        return numbers("records", rows, datatype)
    except InvalidInputError as exc:
        named = _first_invalid(rows, columns, datatype)
        if named is None:
            raise
        raise named from exc


def _first_invalid(
    rows: list[list[Any]], columns: list[str], datatype: str
) -> InvalidInputError | None:
    """The error naming the record and column of the first value ``datatype`` cannot hold."""
    target = np.dtype(OIP_TO_NUMPY[datatype])
    if target.kind == "b":
        low, high = 0.0, 1.0
    else:
        info = np.finfo(target) if target.kind == "f" else np.iinfo(target)
        low, high = float(info.min), float(info.max)
    hint = f"send a number for every feature, within {datatype}'s range"
    for index, row in enumerate(rows):
        for column, value in zip(columns, row, strict=True):
            where = f"record {index} column {column!r}"
            if not isinstance(value, int | float) or (
                target.kind in "iu" and isinstance(value, float)
            ):
                return InvalidInputError(f"{where} is {describe(value)}", hint=hint)
            if not low <= value <= high:
                return InvalidInputError(
                    f"{where}: {value:.6g} does not fit {datatype} ({low:.6g}..{high:.6g})",
                    hint=hint,
                )
    return None
