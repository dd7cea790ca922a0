"""Feature definitions: entities, feature views, feature services and on-demand features."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import yaml

from ghaf.errors import InvalidInputError, UserCodeError

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")

DTYPES: dict[str, pa.DataType] = {
    "float64": pa.float64(),
    "float32": pa.float32(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
"""Feature value types a definition may name."""


def check_name(kind: str, name: str) -> str:
    """Return ``name`` or raise naming the bad identifier."""
    if not _NAME.match(name):
        raise InvalidInputError(
            f"{kind} name {name!r} is invalid",
            hint="use lowercase letters, digits and '_', starting with a letter or '_'",
        )
    return name


@dataclass(frozen=True)
class Field:
    """A typed feature column."""

    name: str
    dtype: str = "float64"
    description: str = ""

    def __post_init__(self) -> None:
        check_name("feature", self.name)
        if self.dtype not in DTYPES:
            raise InvalidInputError(
                f"feature {self.name!r} has unknown type {self.dtype!r}",
                hint=f"use one of {', '.join(DTYPES)}",
            )

    @property
    def arrow_type(self) -> pa.DataType:
        return DTYPES[self.dtype]


@dataclass(frozen=True)
class Entity:
    """A business object features describe, identified by its join keys."""

    name: str
    join_keys: tuple[str, ...]
    description: str = ""
    key_dtype: str = "int64"

    def __post_init__(self) -> None:
        check_name("entity", self.name)
        if not self.join_keys:
            raise InvalidInputError(f"entity {self.name!r} has no join_keys", hint="name one")
        for key in self.join_keys:
            check_name("join key", key)

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "entity",
            "name": self.name,
            "join_keys": list(self.join_keys),
            "key_dtype": self.key_dtype,
            "description": self.description,
        }


@dataclass(frozen=True)
class Transform:
    """A DuckDB SQL transform as a feature source; ``inputs`` maps table aliases to sources."""

    sql: str
    inputs: Mapping[str, str] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        return {"sql": self.sql, "inputs": dict(sorted(self.inputs.items()))}


Source = str | Transform
"""``"dataset:NAME[:V]"``, a Parquet path or ``file://`` URL, or a :class:`Transform`."""


@dataclass(frozen=True)
class FeatureView:
    """Features of one entity from one source, with point-in-time semantics and a TTL."""

    name: str
    entities: tuple[Entity, ...]
    source: Source
    features: tuple[Field, ...]
    timestamp_field: str = "event_ts"
    created_timestamp_field: str | None = None
    ttl: timedelta | None = None
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    classification: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_name("feature view", self.name)
        if not self.entities:
            raise InvalidInputError(f"feature view {self.name!r} has no entities", hint="add one")
        if not self.features:
            raise InvalidInputError(f"feature view {self.name!r} has no features", hint="add one")
        names = [f.name for f in self.features]
        reserved = set(self.join_keys) | {self.timestamp_field, self.created_timestamp_field}
        for name in names:
            if names.count(name) > 1 or name in reserved:
                raise InvalidInputError(
                    f"feature view {self.name!r}: feature {name!r} is duplicated or a key",
                    hint="give every feature a distinct name that is not a key or timestamp",
                )
        if self.ttl is not None and self.ttl <= timedelta(0):
            raise InvalidInputError(f"feature view {self.name!r}: ttl must be positive")

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(key for entity in self.entities for key in entity.join_keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def field(self, name: str) -> Field:
        for item in self.features:
            if item.name == name:
                return item
        raise InvalidInputError(
            f"unknown feature {self.name}:{name}",
            hint=f"feature view {self.name!r} has {', '.join(self.feature_names)}",
        )

    def spec(self) -> dict[str, Any]:
        source = self.source.spec() if isinstance(self.source, Transform) else self.source
        return {
            "kind": "feature_view",
            "name": self.name,
            "entities": [e.name for e in self.entities],
            "join_keys": list(self.join_keys),
            "key_dtypes": [e.key_dtype for e in self.entities for _ in e.join_keys],
            "source": source,
            "features": [{"name": f.name, "dtype": f.dtype} for f in self.features],
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
            "ttl_seconds": None if self.ttl is None else self.ttl.total_seconds(),
            "owner": self.owner,
            "tags": dict(sorted(self.tags.items())),
            "classification": self.classification,
            "description": self.description,
        }


@dataclass(frozen=True)
class OnDemandFeatureView:
    """Features computed at request time by a vectorized function over Arrow columns.

    ``function`` gets a dict of column name -> ``pa.Array`` (request data and the
    ``sources`` features) and returns a dict of output name -> array.
    """

    name: str
    sources: tuple[str, ...]
    request_fields: tuple[Field, ...]
    features: tuple[Field, ...]
    function: Callable[[dict[str, pa.Array]], Mapping[str, Any]]
    owner: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        check_name("on-demand feature view", self.name)

    def spec(self) -> dict[str, Any]:
        fn = self.function
        return {
            "kind": "on_demand_feature_view",
            "name": self.name,
            "sources": list(self.sources),
            "request_fields": [{"name": f.name, "dtype": f.dtype} for f in self.request_fields],
            "features": [{"name": f.name, "dtype": f.dtype} for f in self.features],
            "function": f"{fn.__module__}:{fn.__qualname__}",
            "owner": self.owner,
            "description": self.description,
        }

    def compute(self, columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
        """Run the function, wrapping its failures as :class:`UserCodeError`."""
        try:
            out = self.function(columns)
        except Exception as exc:
            raise UserCodeError(
                f"on-demand feature view {self.name!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        return {f.name: pa.array(out[f.name], type=f.arrow_type) for f in self.features}


@dataclass(frozen=True)
class FeatureService:
    """A named set of features a model uses: ``"view:feature"`` or ``"view"`` (all)."""

    name: str
    features: tuple[str, ...]
    owner: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        check_name("feature service", self.name)

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "feature_service",
            "name": self.name,
            "features": list(self.features),
            "owner": self.owner,
            "description": self.description,
        }


Definition = Entity | FeatureView | FeatureService | OnDemandFeatureView


def spec_digest(spec: Mapping[str, Any]) -> str:
    """SHA-256 of a spec's canonical JSON."""
    return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()


def incompatibilities(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Changes that break consumers: key changes, type changes, removed features."""
    problems: list[str] = []
    if old.get("join_keys") != new.get("join_keys"):
        problems.append(f"join keys {old.get('join_keys')} -> {new.get('join_keys')}")
    if old.get("key_dtypes") != new.get("key_dtypes") and old.get("kind") != "feature_service":
        problems.append(f"key types {old.get('key_dtypes')} -> {new.get('key_dtypes')}")
    before = {f["name"]: f["dtype"] for f in old.get("features", []) if isinstance(f, dict)}
    after = {f["name"]: f["dtype"] for f in new.get("features", []) if isinstance(f, dict)}
    for name, dtype in before.items():
        if name not in after:
            problems.append(f"feature {name!r} removed")
        elif after[name] != dtype:
            problems.append(f"feature {name!r} type {dtype} -> {after[name]}")
    return problems


def load_definitions(path: Path) -> list[Definition]:
    """Collect the definitions a ``defs.py`` (module globals) or YAML file declares.

    Raises:
        InvalidInputError: the file is missing or of an unknown kind.
        UserCodeError: importing the Python file raised.
    """
    if not path.is_file():
        raise InvalidInputError(f"definitions file {path} does not exist", hint="check the path")
    if path.suffix in (".yaml", ".yml"):
        return definitions_from_yaml(yaml.safe_load(path.read_text()) or {})
    if path.suffix != ".py":
        raise InvalidInputError(
            f"definitions file {path} is neither .py nor .yaml", hint="rename it"
        )
    module_name = f"ghaf_feature_defs_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"cannot import definitions file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserCodeError(f"{path} raised {type(exc).__name__}: {exc}") from exc
    return unique_definitions(
        value for value in vars(module).values() if isinstance(value, Definition)
    )


def unique_definitions(items: Iterable[Definition]) -> list[Definition]:
    """Deduplicate by identity; two different objects with one kind and name is an error."""
    seen: dict[tuple[str, str], Definition] = {}
    for item in items:
        key = (type(item).__name__, item.name)
        if key in seen and seen[key] is not item and seen[key] != item:
            raise InvalidInputError(f"{key[0]} {item.name!r} is defined twice", hint="rename one")
        seen[key] = item
    # Entities first, then views, then services: the order apply needs.
    order = {Entity: 0, FeatureView: 1, OnDemandFeatureView: 2, FeatureService: 3}
    return sorted(seen.values(), key=lambda d: (order[type(d)], d.name))


def definitions_from_yaml(doc: Mapping[str, Any]) -> list[Definition]:
    """Build definitions from a YAML document.

    Its keys are ``entities``, ``feature_views`` and ``feature_services``, each a list.
    """
    entities: dict[str, Entity] = {}
    result: list[Definition] = []
    try:
        for raw in doc.get("entities", []):
            entity = Entity(
                raw["name"],
                tuple(raw["join_keys"]),
                raw.get("description", ""),
                raw.get("key_dtype", "int64"),
            )
            entities[entity.name] = entity
            result.append(entity)
        for raw in doc.get("feature_views", []):
            source = raw["source"]
            if isinstance(source, dict):
                source = Transform(source["sql"], dict(source.get("inputs", {})))
            ttl = raw.get("ttl_seconds")
            result.append(
                FeatureView(
                    name=raw["name"],
                    entities=tuple(entities[name] for name in raw["entities"]),
                    source=source,
                    features=tuple(
                        Field(f["name"], f.get("dtype", "float64")) for f in raw["features"]
                    ),
                    timestamp_field=raw.get("timestamp_field", "event_ts"),
                    created_timestamp_field=raw.get("created_timestamp_field"),
                    ttl=None if ttl is None else timedelta(seconds=float(ttl)),
                    owner=raw.get("owner", ""),
                    tags=dict(raw.get("tags", {})),
                    classification=raw.get("classification"),
                    description=raw.get("description", ""),
                )
            )
        for raw in doc.get("feature_services", []):
            result.append(FeatureService(raw["name"], tuple(raw["features"]), raw.get("owner", "")))
    except KeyError as exc:
        raise InvalidInputError(f"definition is missing the field {exc.args[0]!r}") from exc
    return unique_definitions(result)


def view_from_spec(spec: Mapping[str, Any], entities: Mapping[str, Entity]) -> FeatureView:
    """Rebuild a :class:`FeatureView` from its stored spec."""
    source: Source = spec["source"]
    if isinstance(source, dict):
        source = Transform(source["sql"], dict(source["inputs"]))
    ttl = spec.get("ttl_seconds")
    return FeatureView(
        name=spec["name"],
        entities=tuple(entities[name] for name in spec["entities"]),
        source=source,
        features=tuple(Field(f["name"], f["dtype"]) for f in spec["features"]),
        timestamp_field=spec["timestamp_field"],
        created_timestamp_field=spec.get("created_timestamp_field"),
        ttl=None if ttl is None else timedelta(seconds=ttl),
        owner=spec.get("owner", ""),
        tags=dict(spec.get("tags", {})),
        classification=spec.get("classification"),
        description=spec.get("description", ""),
    )


def entity_from_spec(spec: Mapping[str, Any]) -> Entity:
    return Entity(
        spec["name"], tuple(spec["join_keys"]), spec.get("description", ""), spec["key_dtype"]
    )


def service_from_spec(spec: Mapping[str, Any]) -> FeatureService:
    return FeatureService(
        spec["name"], tuple(spec["features"]), spec.get("owner", ""), spec.get("description", "")
    )


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"view:feature"`` -> (view, feature); ``"view"`` -> (view, None)."""
    view, _, feature = ref.partition(":")
    return view, (feature or None)


def split_refs(refs: Sequence[str]) -> list[tuple[str, str | None]]:
    return [parse_ref(ref) for ref in refs]
