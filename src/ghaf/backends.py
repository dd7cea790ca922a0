"""One table from a name (URL scheme, setting, flavor) to its backend, imported lazily.

Every kind of backend is looked up here: blob stores, event buses and online stores by
URL scheme, the pipeline executor and the key provider from the settings, serving
runtimes and model flavors by flavor name, prediction sinks by sink URL. Targets are
import paths, imported only when chosen, so a missing extra hurts only its own backend
and ``ghaf --help`` loads none of them. Third parties add names with
:func:`register_backend`; a name is registered once.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ghaf.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    from ghaf.artifacts.base import BlobStore
    from ghaf.events.base import EventBus
    from ghaf.security.base import KeyProvider
    from ghaf.settings import AuditSinkSettings, GhafSettings

BACKENDS: dict[str, dict[str, str]] = {
    "artifacts": {
        "file": "ghaf.artifacts.local:LocalBlobStore",
        "s3": "ghaf.artifacts.s3:S3BlobStore",
    },
    "events": {
        "memory": "ghaf.events.memory:InProcessEventBus",
        "nats": "ghaf.events.nats:NatsEventBus",
    },
    "online": {
        "sqlite": "ghaf.features.online_sqlite:SqliteOnlineStore",
        "redis": "ghaf.features.online_redis:RedisOnlineStore",
    },
    "executors": {
        "local": "ghaf.pipelines.local:LocalExecutor",
        "ray": "ghaf.pipelines.ray:RayExecutor",
    },
    "keys": {
        "file": "ghaf.security.keys:LocalKeyProvider",
        "static": "ghaf.security.keys:StaticKeyProvider",
        "kms": "ghaf.security.kms:KmsKeyProvider",
    },
    "flavors": {
        "skops": "ghaf.models.flavors.skops",
        "lightgbm": "ghaf.models.flavors.lightgbm",
        "xgboost": "ghaf.models.flavors.xgboost",
        "onnx": "ghaf.models.flavors.onnx",
        "pytorch": "ghaf.models.flavors.pytorch",
        "pyfunc": "ghaf.models.flavors.pyfunc",
    },
    "runtimes": {
        "skops": "ghaf.serving.runtimes.sklearn:SklearnRuntime",
        "sklearn": "ghaf.serving.runtimes.sklearn:SklearnRuntime",
        "lightgbm": "ghaf.serving.runtimes.lightgbm:LightGBMRuntime",
        "xgboost": "ghaf.serving.runtimes.xgboost:XGBoostRuntime",
        "onnx": "ghaf.serving.runtimes.onnx:OnnxRuntime",
        "pytorch": "ghaf.serving.runtimes.torch:TorchRuntime",
    },
    "sinks": {
        "file": "ghaf.serving.predlog:ParquetSink",
        "events": "ghaf.serving.predlog:EventBusSink",
    },
    "log_sinks": {
        "syslog+tls": "ghaf.shipping.syslog:SyslogTlsSink",
        "https": "ghaf.shipping.http_json:HttpJsonSink",
    },
}
"""concern -> name -> ``"module:attr"`` (or ``"module"`` where the module is the backend).

A flavor is a module with ``save``/``load`` (:class:`ghaf.models.base.Flavor`); its
runtime, under the same name in ``runtimes``, is the class serving loads it with.
"""


def register_backend(concern: str, name: str, target: str) -> None:
    """Add a third-party backend ``name`` -> ``"module:attr"`` under ``concern``.

    Raises:
        ConfigError: the concern is unknown, the target is not an import path, or
            ``name`` is already registered (a second registration would shadow the first).
    """
    table = BACKENDS.get(concern)
    if table is None:
        raise ConfigError(
            f"unknown backend concern {concern!r}", hint=f"use one of {_listed(BACKENDS)}"
        )
    if not target.partition(":")[0] or target.endswith(":") or " " in target:
        raise ConfigError(
            f"backend target {target!r} is not an import path",
            hint="write it as 'package.module:Class'",
        )
    if name in table:
        raise ConfigError(
            f"a {concern} backend named {name!r} is already registered ({table[name]})",
            hint="pick another name; a registered backend cannot be replaced",
        )
    table[name] = target


def backend_names(concern: str) -> list[str]:
    """The names registered under ``concern``, sorted."""
    return sorted(BACKENDS.get(concern, {}))


def backend_class(concern: str, url: str) -> Any:
    """The class registered for ``url``'s scheme under ``concern``.

    Raises:
        ConfigError: the scheme is not registered; the message lists the accepted ones.
    """
    scheme = urlparse(url).scheme
    target = BACKENDS.get(concern, {}).get(scheme)
    if target is None:
        accepted = ", ".join(f"{s}://" for s in backend_names(concern))
        raise ConfigError(
            f"{concern} URL {url!r} has an unsupported scheme", hint=f"use one of {accepted}"
        )
    return _import(target)


def backend_named(concern: str, name: str, *, setting: str) -> Any:
    """The backend registered as ``name`` under ``concern``, chosen by ``setting``.

    Raises:
        ConfigError: ``name`` is not registered; the message names the setting and
            lists the accepted values.
    """
    target = BACKENDS.get(concern, {}).get(name)
    if target is None:
        raise ConfigError(
            f"setting {setting} names an unknown {concern} backend {name!r}",
            hint=f"use one of {_listed(BACKENDS.get(concern, {}))}",
        )
    return _import(target)


def open_blob_store(url: str, *, region: str, endpoint_url: str | None = None) -> BlobStore:
    """The blob backend for an artifact URL."""
    cls = backend_class("artifacts", url)
    if urlparse(url).scheme == "file":
        return cls(Path(unquote(urlparse(url).path)), region=region)  # type: ignore[no-any-return]
    return cls(url, region=region, endpoint_url=endpoint_url)  # type: ignore[no-any-return]


def open_event_bus(url: str) -> EventBus:
    """The event bus for a bus URL."""
    cls = backend_class("events", url)
    if urlparse(url).scheme == "memory":
        return cls()  # type: ignore[no-any-return]
    return cls(url)  # type: ignore[no-any-return]


def open_executor(settings: GhafSettings) -> Any:
    """The pipeline executor ``settings.executor`` names: local processes, or Ray.

    Returns a :class:`ghaf.pipelines.base.Executor` (typed there: pipelines sit above).
    """
    cls = backend_named("executors", settings.executor, setting="executor")
    if settings.executor == "local":
        return cls()
    return cls(settings.ray_address)


def open_key_provider(settings: GhafSettings) -> KeyProvider:
    """The KEK the settings name: AWS KMS when ``keys.provider`` is ``kms``; else
    ``security.kek`` if set, else the home's key file.

    Raises:
        ConfigError: ``kms`` together with ``security.kek`` (two KEKs named).
    """
    if settings.keys.provider == "kms":
        if settings.security.kek is not None:
            raise ConfigError(
                "settings name two KEKs: keys.provider = 'kms' and security.kek",
                hint="unset GHAF_SECURITY__KEK, or set keys.provider = 'local'",
            )
        kms = backend_named("keys", "kms", setting="keys.provider")
        return kms(  # type: ignore[no-any-return]
            settings.keys.kms_key_id,
            region=settings.keys.kms_region,
            endpoint_url=settings.keys.kms_endpoint_url,
            deletion_window_days=settings.keys.kms_deletion_window_days,
        )
    if settings.security.kek is not None:
        static = backend_named("keys", "static", setting="security.kek")
        kek = settings.security.kek.get_secret_value()
        return static(settings.security.kek_id, kek)  # type: ignore[no-any-return]
    local = backend_named("keys", "file", setting="security.kek_file")
    return local(settings.kek_path)  # type: ignore[no-any-return]


def flavor_module(name: str) -> Any:
    """The module that saves and loads models of flavor ``name`` (a ``ghaf.models.base.Flavor``).

    Raises:
        InvalidInputError: no such flavor (it came from a user or a model's metadata).
    """
    target = BACKENDS["flavors"].get(name)
    if target is None:
        raise InvalidInputError(
            f"unknown model flavor {name!r}", hint=f"use one of {_listed(BACKENDS['flavors'])}"
        )
    return _import(target)


def runtime_class(name: str) -> Any:
    """The serving runtime class for flavor ``name`` (a ``ghaf.serving.base.Runtime``).

    Raises:
        InvalidInputError: no runtime serves that flavor.
    """
    target = BACKENDS["runtimes"].get(name)
    if target is None:
        raise InvalidInputError(
            f"no serving runtime for flavor {name!r}",
            hint=f"use one of {_listed(BACKENDS['runtimes'])}",
        )
    return _import(target)


def open_prediction_sink(
    url: str,
    *,
    events: EventBus | None = None,
    prefix: str = "predictions",
    keys: KeyProvider | None = None,
) -> Any:
    """A prediction sink (``ghaf.serving.predlog.PredictionSink``) for a sink URL.

    ``file:///DIR`` writes Parquet files named ``PREFIX-*.parquet`` into DIR, encrypted
    with ``keys`` (the home's KEK) when given; ``events://`` publishes on ``events``, the
    platform's bus.
    """
    cls = backend_class("sinks", url)
    scheme = urlparse(url).scheme
    if scheme == "file":
        return cls(Path(unquote(urlparse(url).path)), prefix=prefix, keys=keys)
    if events is None:
        raise ConfigError(
            f"prediction sink {url!r} needs the platform's event bus",
            hint="open the platform first, or log to a file:// directory",
        )
    return cls(events)


def open_log_sink(name: str, sink: AuditSinkSettings) -> Any:
    """The audit log sink ``audit_shipping.sinks.NAME`` describes, by its URL's scheme
    (``syslog+tls://`` or ``https://``): a ``ghaf.shipping.base.LogSink`` (typed there:
    shipping sits above).

    Raises:
        ConfigError: an unknown scheme, or a certificate or secret file that cannot be read.
    """
    cls = backend_class("log_sinks", sink.url)
    return cls.from_settings(name, sink)


def _listed(table: dict[str, Any]) -> str:
    return ", ".join(sorted(table))


def _import(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module
