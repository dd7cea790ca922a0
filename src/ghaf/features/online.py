"""Online retrieval: open the configured store, read the latest features with TTL applied."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ghaf.backends import backend_class
from ghaf.errors import IntegrityError, InvalidInputError
from ghaf.features.base import OnlineStore, Row, ViewLayout
from ghaf.features.definitions import OnDemandFeatureView
from ghaf.features.registry import cache_epoch, resolve
from ghaf.features.sealing import (
    Sealer,
    StaleSealingError,
    holds_sealed,
    sealed_layout,
    sealer_for_read,
)
from ghaf.platform import Platform


def open_online_store(url: str, *, region: str | None = None) -> OnlineStore:
    """The online store for ``url`` (``sqlite:///...``, ``redis://...``).

    ``region``: where its data is declared to live; a store that recorded another
    region refuses to open (:mod:`ghaf.features.regions`).
    """
    store: OnlineStore = backend_class("online", url)(url, region=region)
    return store


@dataclass(frozen=True)
class _ViewPlan:
    layout: ViewLayout
    keys: tuple[str, ...]
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    ttl_us: int | None


@dataclass(frozen=True)
class _Plan:
    views: tuple[_ViewPlan, ...]
    on_demand: tuple[OnDemandFeatureView, ...]
    epoch: int


@dataclass
class OnlineFeatures:
    """Feature values by output name (aligned with the entity rows) and each view's age.

    ``ages[view][i]`` is the age in seconds of the value found for row ``i`` (``None``
    when the entity is unknown); a value older than the view's TTL comes back null.
    """

    columns: dict[str, list[Any]]
    ages: dict[str, list[float | None]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.columns, "age_seconds": self.ages}


class OnlineReader:
    """Resolves feature references once and reads them from one store, fast."""

    def __init__(self, platform: Platform, store: OnlineStore) -> None:
        self.platform = platform
        self.store = store
        self._plans: dict[Any, _Plan] = {}
        self._lock = threading.Lock()
        self._sealers: dict[str, Sealer | None] = {}

    def _sealer(self, view: str, *, refresh: bool = False) -> Sealer | None:
        if refresh or view not in self._sealers:
            self._sealers[view] = sealer_for_read(self.platform, self.store.url, view)
        return self._sealers[view]

    def _read(self, vp: _ViewPlan, keys: Sequence[Any]) -> list[Row | None]:
        """The stored rows of ``keys``, opened where the view is sealed (pii).

        Whether a view is sealed is read once; a materialization in another process can
        seal it (or open it) later, which shows as a mismatch here: the state is read
        again and the read retried once.
        """
        name = vp.layout.name
        try:
            return self._read_as(self._sealer(name), vp, keys, strict=False)
        except StaleSealingError:
            return self._read_as(self._sealer(name, refresh=True), vp, keys, strict=True)

    def _read_as(
        self, sealer: Sealer | None, vp: _ViewPlan, keys: Sequence[Any], *, strict: bool
    ) -> list[Row | None]:
        if sealer is None:
            try:
                rows = self.store.read_many(vp.layout, keys, vp.features)
            except ValueError as exc:  # a sealed value read as a number
                if strict:
                    raise
                raise StaleSealingError(vp.layout.name) from exc
            if not strict and holds_sealed(rows):
                raise StaleSealingError(vp.layout.name)
            return rows
        rows = self.store.read_many(sealed_layout(vp.layout), keys, vp.features)
        try:
            return [
                None
                if row is None
                else (
                    row[0],
                    *(sealer.unseal(f, v) for f, v in zip(vp.features, row[1:], strict=True)),
                )
                for row in rows
            ]
        except StaleSealingError as exc:
            if not strict:
                raise
            raise IntegrityError(
                f"feature view {vp.layout.name!r} is sealed in the online store, but holds "
                f"a value of feature {exc.args[0]!r} in clear (written around Ghaf)",
                hint=f"rewrite the view: ghaf features materialize {vp.layout.name} --full",
            ) from exc

    def _plan(self, features: Sequence[str] | str, full_feature_names: bool) -> _Plan:
        key = (features if isinstance(features, str) else tuple(features), full_feature_names)
        plan = self._plans.get(key)
        if plan is not None and plan.epoch == cache_epoch():
            return plan
        selections, on_demand = resolve(self.platform, features)
        views = []
        seen: set[str] = set()
        for sel in selections:
            outputs = tuple(
                f"{sel.view.name}__{f}" if full_feature_names else f for f in sel.features
            )
            for name in outputs:
                if name in seen:
                    raise InvalidInputError(
                        f"output column {name!r} appears twice",
                        hint="pass full_feature_names=True",
                    )
                seen.add(name)
            ttl = None if sel.view.ttl is None else int(sel.view.ttl.total_seconds() * 1e6)
            views.append(
                _ViewPlan(ViewLayout.of(sel.view), sel.view.join_keys, sel.features, outputs, ttl)
            )
        plan = _Plan(tuple(views), tuple(on_demand), cache_epoch())
        with self._lock:
            self._plans[key] = plan
        return plan

    def get_online_features(
        self,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        features: Sequence[str] | str,
        *,
        full_feature_names: bool = False,
    ) -> OnlineFeatures:
        """Latest values for each entity row (a list of dicts or a dict of columns).

        Raises:
            InvalidInputError: a missing key column or an unknown feature, named.
        """
        plan = self._plan(features, full_feature_names)
        if isinstance(entity_rows, Mapping):
            columns: dict[str, list[Any]] = {k: list(v) for k, v in entity_rows.items()}
        else:
            columns = {}
            for row in entity_rows:
                for k, v in row.items():
                    columns.setdefault(k, []).append(v)
        n = len(next(iter(columns.values()))) if columns else 0
        out: dict[str, list[Any]] = dict(columns)
        ages: dict[str, list[float | None]] = {}
        now_us = time.time() * 1e6
        for vp in plan.views:
            try:
                if len(vp.keys) == 1:
                    keys: list[Any] = columns[vp.keys[0]]
                else:
                    keys = list(zip(*(columns[k] for k in vp.keys), strict=True))
            except KeyError as exc:
                raise InvalidInputError(
                    f"entity rows have no join key {exc.args[0]!r} (feature view "
                    f"{vp.layout.name!r})",
                    hint=f"send {', '.join(vp.keys)} for every row",
                ) from exc
            rows = self._read(vp, keys) if n else []
            width = len(vp.outputs) + 1
            if None in rows:  # absent entities read as an all-None row
                blank = (None,) * width
                rows = [blank if r is None else r for r in rows]
            read = list(zip(*rows, strict=True)) if rows else [()] * width  # column-wise
            events = read[0]
            ages[vp.layout.name] = [None if ev is None else (now_us - ev) / 1e6 for ev in events]
            ttl = vp.ttl_us
            stale = (
                [i for i, ev in enumerate(events) if ev is not None and now_us - ev > ttl]
                if ttl is not None
                else []
            )
            for j, name in enumerate(vp.outputs):
                column = list(read[j + 1])
                for i in stale:  # past the TTL: the value is withheld, its age is kept
                    column[i] = None
                out[name] = column
        for odfv in plan.on_demand:
            arrays = {k: pa.array(v) for k, v in out.items()}
            for name, array in odfv.compute(arrays).items():
                out[name] = array.to_pylist()
        return OnlineFeatures(out, ages)


_READERS: weakref.WeakKeyDictionary[Platform, OnlineReader] = weakref.WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


def online_reader(platform: Platform, store: OnlineStore | None = None) -> OnlineReader:
    """The platform's reader over its configured online store (opened once)."""
    with _READERS_LOCK:
        reader = _READERS.get(platform)
        if reader is None or (store is not None and reader.store is not store):
            url = platform.settings.resolved_online_store_url
            reader = OnlineReader(platform, store or open_online_store(url))
            _READERS[platform] = reader
        return reader


def get_online_features(
    platform: Platform,
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    features: Sequence[str] | str,
    *,
    full_feature_names: bool = False,
) -> OnlineFeatures:
    """Latest feature values for ``entity_rows`` from the platform's online store.

    ``features`` is a list of ``"view:feature"`` (or ``"view"``) refs or a feature
    service name.
    """
    return online_reader(platform).get_online_features(
        entity_rows, features, full_feature_names=full_feature_names
    )
