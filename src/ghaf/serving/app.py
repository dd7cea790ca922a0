"""The inference server as a raw ASGI app: OIP v2 REST, a records endpoint, metrics.

Raw ASGI rather than a framework: the per-request path is a dict lookup on the path,
one ``orjson`` parse, one await on the batcher and one ``orjson`` dump.

With a :class:`~ghaf.access.guard.RequestGuard` every route but the health checks
needs a bearer credential (401 without one), and each request is authorized for what
it does in the project that owns the model: ``model.predict`` to score, ``model.read``
for model metadata, ``monitoring.read`` for ``/metrics`` (unless ``metrics_public``).
A refusal is a 403 and a ``denied`` audit record. Errors map to statuses through the
one table, :mod:`ghaf.http_status`.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ghaf.asgi import read_body
from ghaf.errors import (
    BackendUnavailableError,
    GhafError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from ghaf.http_status import http_status_for
from ghaf.logs import get_logger
from ghaf.serving.base import Array
from ghaf.serving.batching import Batcher, OverloadedError
from ghaf.serving.metrics import Metrics
from ghaf.serving.models import ServedModel
from ghaf.serving.predlog import PredictionLogger, now_ms
from ghaf.serving.protocol import decode_infer, encode_infer, error_body, to_matrix
from ghaf.serving.records import FeatureJoiner, FeatureLookup, records_to_matrix
from ghaf.serving.traffic import UNIT_HEADER, Assignment, Route, TrafficSplit

if TYPE_CHECKING:
    from ghaf.access.guard import RequestGuard
    from ghaf.health import BackendHealth
    from ghaf.security.identity import Actor
    from ghaf.serving.live import DeploymentWatcher

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_CHALLENGE = (b"www-authenticate", b'Bearer error="invalid_token"')
HEALTH_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
"""The only paths that answer without credentials (and ``/metrics`` if made public)."""
_WORKER = (b"x-ghaf-worker", str(os.getpid()).encode())
_log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who sent a request: the credential's cache key, the actor, its address."""

    key: str
    actor: Actor
    source: str | None


@dataclass
class Deployment:
    """A served name: its versions, how traffic splits between them, where entities come from."""

    name: str
    versions: dict[str, ServedModel]
    split: TrafficSplit
    entity_key: str | None = None
    features: FeatureLookup | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    joiner: FeatureJoiner | None = field(default=None, init=False)
    revision: int | None = None
    assignment: Assignment | None = None
    unit_kind: str = "header"
    unit_name: str = UNIT_HEADER
    shadows: tuple[str, ...] = ()
    pending: str | None = None
    """Why the record's latest revision is not applied (a version not loaded), or None."""

    def __post_init__(self) -> None:
        if self.features is not None:
            self.joiner = FeatureJoiner(self.features)
        if self.split.shadow is not None and not self.shadows:
            self.shadows = (self.split.shadow,)

    def apply(self, route: Route) -> None:
        """Serve ``route`` from the next request on (called on the event loop)."""
        self.split = route.split
        self.assignment = route.assignment
        self.unit_kind, self.unit_name = route.unit_kind, route.unit_name
        self.shadows = route.shadows
        self.revision = route.revision
        self.pending = None

    @property
    def revision_header(self) -> tuple[bytes, bytes]:
        return (b"x-ghaf-revision", str(self.revision or 0).encode())

    @classmethod
    def of(cls, served: ServedModel, **kwargs: Any) -> Deployment:
        version = served.spec.version
        return cls(served.spec.name, {version: served}, TrafficSplit.single(version), **kwargs)


class ServingApp:
    """ASGI app over deployments; start/stop happen in the lifespan (or ``astart``/``astop``)."""

    def __init__(
        self,
        deployments: list[Deployment],
        *,
        metrics: Metrics | None = None,
        prediction_log: PredictionLogger | None = None,
        max_body_bytes: int = 8 << 20,
        guard: RequestGuard | None = None,
        metrics_public: bool = False,
        backends: BackendHealth | None = None,
        watcher: DeploymentWatcher | None = None,
        loader: Callable[[str, str], ServedModel] | None = None,
    ) -> None:
        self.deployments = {d.name: d for d in deployments}
        self.watcher = watcher
        self.loader = loader
        """Loads a version a new revision names (blocking: run off the event loop)."""
        self._failed_loads: dict[tuple[str, str], float] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self.backends = backends
        self.metrics = metrics or Metrics()
        self.prediction_log = prediction_log
        self.max_body_bytes = max_body_bytes
        self.guard = guard
        self.public_paths = HEALTH_PATHS | ({"/metrics"} if metrics_public else set())
        self._background: set[asyncio.Task[Any]] = set()
        self._started = False
        if prediction_log is not None:
            self.metrics.dropped_logs = lambda: prediction_log.dropped

    # Lifecycle ---------------------------------------------------------------------

    async def astart(self) -> None:
        if self._started:
            return
        for deployment in self.deployments.values():
            for served in deployment.versions.values():
                self._start_batcher(served)
        if self.watcher is not None:
            self._watch_task = asyncio.get_running_loop().create_task(self._watch())
        self._started = True

    def sync_routes(self) -> None:
        """Apply each deployment record's current revision now (blocking: at start-up)."""
        if self.watcher is not None:
            self._apply(self.watcher.changed({}))

    def _apply(self, records: dict[str, Any]) -> None:
        from ghaf.serving.live import route_of

        for model, record in records.items():
            deployment = self.deployments[model]
            try:
                route = route_of(record, model, deployment.versions)
            except InvalidInputError as exc:
                if deployment.pending != exc.headline:
                    _log.warning("deployment revision not applied", error=exc.headline)
                deployment.pending = exc.headline
                continue
            deployment.apply(route)

    def _start_batcher(self, served: ServedModel) -> None:
        if served.batcher is not None:
            served.batcher.start()
            name, version = served.spec.name, served.spec.version
            served.batcher._observer = self._batch_observer(name, version)
            self.metrics.track_queue(name, version, _depth_of(served.batcher))

    async def _load_missing(self, records: dict[str, Any]) -> None:
        """Load the versions ``records`` name that this worker has not (off the loop)."""
        from ghaf.serving.live import RELOAD_BACKOFF_S, versions_needed

        if self.loader is None:
            return
        loop = asyncio.get_running_loop()
        for model, record in records.items():
            deployment = self.deployments[model]
            try:
                needed = versions_needed(record, model)
            except InvalidInputError:
                continue  # _apply says why
            for version in sorted(needed - set(deployment.versions)):
                failed = self._failed_loads.get((model, version))
                if failed is not None and time.monotonic() - failed < RELOAD_BACKOFF_S:
                    continue
                served: ServedModel | None = None
                try:
                    served = await loop.run_in_executor(None, self.loader, model, version)
                    reason = served.error or ""
                except Exception as exc:  # noqa: BLE001 - keep serving what is loaded
                    reason = f"{type(exc).__name__}: {getattr(exc, 'headline', exc)}"
                if served is None or not served.ready:
                    self._failed_loads[(model, version)] = time.monotonic()
                    _log.warning("version not loaded", model=model, version=version, error=reason)
                    continue
                self._failed_loads.pop((model, version), None)
                self._start_batcher(served)
                deployment.versions[version] = served
                _log.info("version loaded", model=model, version=version)

    async def _watch(self) -> None:
        """Poll the deployment records; a failed poll (database away) is retried."""
        assert self.watcher is not None  # nosec B101
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.watcher.interval)
            current = {
                name: d.revision for name, d in self.deployments.items() if d.pending is None
            }
            try:
                changed = await loop.run_in_executor(None, self.watcher.changed, current)
            except Exception as exc:  # noqa: BLE001 - keep serving the last revision
                _log.warning("deployment poll failed", error=str(exc))
                continue
            await self._load_missing(changed)
            self._apply(changed)

    async def astop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
        for deployment in self.deployments.values():
            if deployment.joiner is not None:
                deployment.joiner.close()
            for served in deployment.versions.values():
                if served.batcher is not None:
                    await served.batcher.stop()
        if self.prediction_log is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.prediction_log.close)

    def _batch_observer(self, name: str, version: str) -> Callable[[int, float], None]:
        def observe(rows: int, seconds: float) -> None:
            self.metrics.observe_batch(name, version, rows, seconds)

        return observe

    # ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.astart()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.astop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._started:
            await self.astart()
        path: str = scope["path"]
        method: str = scope["method"]
        parts = path.strip("/").split("/")
        try:
            caller = None
            if self.guard is not None and path not in self.public_paths:
                caller = await self._authenticate(scope)
            if method == "POST":
                body = await self._body(scope, receive)
                if parts[0] == "v2" and len(parts) >= 4 and parts[-1] == "infer":
                    await self._infer(scope, parts, body, send, caller)
                    return
                if parts[0] == "predict" and len(parts) <= 2:
                    await self._records(scope, parts, body, send, caller)
                    return
                if parts == ["v2", "feedback"]:
                    await self._feedback(body, send, caller)
                    return
            elif method in ("GET", "HEAD"):
                await self._get(parts, send, caller)
                return
            await _reply(send, 404, error_body(f"no route for {method} {path}"))
        except _UnauthenticatedError as exc:
            await _reply(send, 401, error_body(exc.headline), [*_JSON, _CHALLENGE])
        except GhafError as exc:
            await _reply_error(send, exc)

    async def _authenticate(self, scope: Scope) -> _Caller:
        assert self.guard is not None  # nosec B101
        client = scope.get("client")
        source = f"{client[0]}:{client[1]}" if client else None
        key, actor = self.guard.cached_actor(scope["headers"])
        if actor is not None:
            return _Caller(key, actor, source)
        try:
            key, actor = await self.guard.aauthenticate(scope["headers"], source)
        except PermissionDeniedError as exc:  # no or refused credential: 401, not 403
            raise _UnauthenticatedError(exc.headline, hint=exc.hint) from exc
        return _Caller(key, actor, source)

    async def _authorize(
        self, caller: _Caller | None, action: str, spec: Any = None, resource: str = ""
    ) -> None:
        """Refuse (403, audited) unless ``caller`` may do ``action`` on the model ``spec``."""
        if caller is None:
            return
        guard = self.guard
        assert guard is not None  # nosec B101
        project = (spec.project if spec is not None else None) or guard.default_project
        if guard.is_allowed(caller.key, action, project):
            return
        if spec is not None:
            resource = f"model:{spec.name}:{spec.version}"
        await guard.aauthorize(
            caller.key, caller.actor, action, resource, project, source=caller.source
        )

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        fix = "send fewer rows per request, or serve with a larger --max-body-mb"
        return await read_body(scope, receive, self.max_body_bytes, fix=fix)

    # GET endpoints -----------------------------------------------------------------

    async def _get(self, parts: list[str], send: Send, caller: _Caller | None) -> None:
        if parts == ["metrics"]:
            await self._authorize(caller, "monitoring.read", resource="metrics:model-server")
            text = self.metrics.render().encode()
            headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
            await _reply(send, 200, text, headers)
            return
        if parts[:1] != ["v2"]:
            await _reply(send, 404, error_body("unknown path"))
            return
        if parts == ["v2"]:
            doc = {"name": "ghaf", "version": "0.1.0", "extensions": ["binary_tensor_data"]}
            await _reply(send, 200, orjson.dumps(doc))
        elif parts == ["v2", "health", "live"]:
            await _reply(send, 200, b'{"live":true}')
        elif parts == ["v2", "health", "ready"]:
            ready = all(self._any_ready(d) for d in self.deployments.values())
            state: dict[str, Any] = {}
            if self.backends:  # a reconnecting bus or store: not ready, and why
                backends = await self.backends.acheck()
                state, ready = backends.to_json(), ready and backends.ready
            state["ready"] = ready
            await _reply(send, 200 if ready else 503, orjson.dumps(state))
        elif len(parts) >= 3 and parts[1] == "models":
            await self._model_get(parts, send, caller)
        else:
            await _reply(send, 404, error_body("unknown path"))

    @staticmethod
    def _any_ready(deployment: Deployment) -> bool:
        return any(deployment.versions[v].ready for v in deployment.split.weights)

    async def _model_get(self, parts: list[str], send: Send, caller: _Caller | None) -> None:
        try:
            deployment, served, rest = self._lookup(parts)
        except NotFoundError as exc:
            await _reply(send, 404, error_body(exc.headline))
            return
        first = deployment.versions[next(iter(deployment.versions))]
        await self._authorize(caller, "model.read", (served or first).spec)
        if rest == ["ready"]:
            ok = served.ready if served is not None else self._any_ready(deployment)
            target = served or deployment.versions[deployment.split.choose(None)]
            doc = {"name": deployment.name, "ready": ok}
            if not ok and target.error:
                doc["error"] = target.error
            await _reply(send, 200 if ok else 503, orjson.dumps(doc))
            return
        if rest:
            await _reply(send, 404, error_body("unknown path"))
            return
        target = served or deployment.versions[next(iter(deployment.split.weights))]
        signature = target.signature
        doc = {
            "name": deployment.name,
            "versions": list(deployment.versions),
            "platform": target.spec.flavor,
            "inputs": [s.to_json() for s in signature.inputs] if signature else [],
            "outputs": [s.to_json() for s in signature.outputs] if signature else [],
            "revision": deployment.revision,
            "experiment": deployment.assignment.experiment if deployment.assignment else None,
            "weights": dict(deployment.split.weights),
            "pending": deployment.pending,
        }
        await _reply(send, 200, orjson.dumps(doc), [*_JSON, deployment.revision_header, _WORKER])

    def _lookup(self, parts: list[str]) -> tuple[Deployment, ServedModel | None, list[str]]:
        """(deployment, pinned version or None, the rest of the path) for /v2/models/..."""
        name = parts[2]
        deployment = self.deployments.get(name)
        if deployment is None:
            raise NotFoundError(f"unknown model {name!r}", hint="GET /v2/models/<name>")
        if len(parts) >= 5 and parts[3] == "versions":
            served = deployment.versions.get(parts[4])
            if served is None:
                raise NotFoundError(
                    f"model {name!r} has no version {parts[4]!r}",
                    hint=f"versions: {', '.join(deployment.versions)}",
                )
            return deployment, served, parts[5:]
        return deployment, None, parts[3:]

    # Inference ---------------------------------------------------------------------

    async def _infer(
        self, scope: Scope, parts: list[str], body: bytes, send: Send, caller: _Caller | None
    ) -> None:
        started = time.perf_counter()
        header_length: int | None = None
        route_key: str | None = None
        unit_header: str | None = None
        for key, value in scope["headers"]:
            if key == b"inference-header-content-length":
                header_length = int(value) if value.isdigit() else -1
            elif key == b"x-ghaf-route-key":
                route_key = value.decode("latin-1")
            elif key == b"x-ghaf-unit":
                unit_header = value.decode("latin-1")
        served: ServedModel | None = None
        code = 200
        try:
            deployment, served, _ = self._lookup(parts)
            request = decode_infer(body, header_length)
            key = route_key or _str_or_none(request.parameters.get("routing_key"))
            unit = _unit_of(deployment, unit_header, request.parameters, request.inputs)
            pinned = served is not None
            served, variant = self._choose(deployment, served, key, unit)
            await self._authorize(caller, "model.predict", served.spec)
            signature = self._ready_signature(served)
            rows = to_matrix(request, signature)
            assigned = unit if variant is not None and not pinned else None
            outputs = await self._score(
                deployment, served, rows, request.id, assigned, None if pinned else variant
            )
            payload, head = encode_infer(deployment.name, served.spec.version, request, outputs)
            headers = [*_JSON, deployment.revision_header, _WORKER]
            if head is not None:
                headers = [
                    (b"content-type", b"application/octet-stream"),
                    (b"inference-header-content-length", str(head).encode()),
                    deployment.revision_header,
                    _WORKER,
                ]
            await _reply(send, 200, payload, headers)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OIP error body
            code = await _reply_error(send, exc)
        finally:
            if served is not None:
                spec = served.spec
                self.metrics.observe_request(
                    spec.name, spec.version, code, time.perf_counter() - started
                )

    async def _records(
        self, scope: Scope, parts: list[str], body: bytes, send: Send, caller: _Caller | None
    ) -> None:
        started = time.perf_counter()
        served: ServedModel | None = None
        code = 200
        try:
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"request body is not valid JSON: {exc}", hint="send a list of objects"
                ) from exc
            name = parts[1] if len(parts) == 2 else None
            params: dict[str, Any] = {}
            if isinstance(doc, dict):
                name = name or _str_or_none(doc.get("model"))
                records = doc.get("records")
                key = _str_or_none(doc.get("routing_key"))
                params = doc
            else:
                records, key = doc, None
            deployment = self._deployment(name)
            unit_header = _header(scope, b"x-ghaf-unit")
            first = records[0] if isinstance(records, list) and records else None
            inputs = first if isinstance(first, dict) else {}
            unit = _unit_of(deployment, unit_header, params, inputs)
            served, variant = self._choose(deployment, None, key, unit)
            await self._authorize(caller, "model.predict", served.spec)
            signature = self._ready_signature(served)
            rows = await records_to_matrix(records, signature, deployment)
            request_id = _request_id(params.get("id"))
            outputs = await self._score(
                deployment, served, rows, request_id, unit if variant else None, variant
            )
            doc_out = {
                "model_name": deployment.name,
                "model_version": served.spec.version,
                "outputs": outputs,
                **({"id": request_id} if request_id is not None else {}),
            }
            body_out = orjson.dumps(doc_out, option=orjson.OPT_SERIALIZE_NUMPY)
            await _reply(send, 200, body_out, [*_JSON, deployment.revision_header, _WORKER])
        except Exception as exc:  # noqa: BLE001 - every failure becomes an OIP error body
            code = await _reply_error(send, exc)
        finally:
            if served is not None:
                spec = served.spec
                self.metrics.observe_request(
                    spec.name, spec.version, code, time.perf_counter() - started
                )

    @staticmethod
    def _choose(
        deployment: Deployment, pinned: ServedModel | None, key: str | None, unit: str | None
    ) -> tuple[ServedModel, str | None]:
        """(the version that answers, the experiment variant or None).

        A pinned version (``/versions/N``) answers as asked, outside any experiment; a
        request without a unit during an experiment is served by the weights, unassigned.
        """
        if pinned is not None:
            return pinned, None
        assignment = deployment.assignment
        if assignment is not None and unit is not None:
            variant, version = assignment.assign(unit)
            return deployment.versions[version], variant
        return deployment.versions[deployment.split.choose(key)], None

    async def _feedback(self, body: bytes, send: Send, caller: _Caller | None) -> None:
        """``POST /v2/feedback``: one outcome, or ``{"model", "outcomes": [...]}``, stored
        as one governed ``model.feedback`` operation of the caller (201)."""
        from ghaf.serving.outcomes import parse_outcome, record_outcomes

        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(
                f"request body is not valid JSON: {exc}",
                hint='send {"model": "NAME", "request_id": "...", "outcome": 1}',
            ) from exc
        if not isinstance(doc, dict):
            raise InvalidInputError(
                "the feedback body is not an object", hint='{"outcomes": [...]}'
            )
        deployment = self._deployment(_str_or_none(doc.get("model")))
        raw = doc.get("outcomes", [doc])
        if not isinstance(raw, list):
            raise InvalidInputError("outcomes is not a list", hint='"outcomes": [{...}, ...]')
        outcomes = [
            parse_outcome(item, i + 1 if "outcomes" in doc else 0) for i, item in enumerate(raw)
        ]
        if caller is None or self.guard is None:
            raise _NotReadyError(
                "feedback needs a platform home to store outcomes and a caller to record",
                hint="serve without --insecure-dev",
            )
        spec = deployment.versions[next(iter(deployment.versions))].spec
        platform = self.guard.platform.in_project(spec.project or self.guard.default_project)
        loop = asyncio.get_running_loop()
        stored = await loop.run_in_executor(
            None,
            lambda: record_outcomes(platform, caller.actor, deployment.name, outcomes),
        )
        await _reply(send, 201, orjson.dumps({"stored": stored}), [*_JSON, _WORKER])

    def _deployment(self, name: str | None) -> Deployment:
        if name is None:
            if len(self.deployments) == 1:
                return next(iter(self.deployments.values()))
            raise InvalidInputError(
                "several models are served; name one", hint="POST /predict/<model>"
            )
        deployment = self.deployments.get(name)
        if deployment is None:
            raise NotFoundError(f"unknown model {name!r}", hint="GET /v2/models/<name>")
        return deployment

    @staticmethod
    def _ready_signature(served: ServedModel) -> Any:
        if served.batcher is None or served.runtime is None:
            raise _NotReadyError(
                f"model {served.spec.name!r} version {served.spec.version} is not ready: "
                f"{served.error or 'loading'}"
            )
        return served.runtime.signature

    async def _score(
        self,
        deployment: Deployment,
        served: ServedModel,
        rows: Array,
        request_id: str | None,
        unit: str | None,
        variant: str | None,
    ) -> dict[str, Array]:
        """Score ``rows``; shadows score a copy off the response path; log both.

        ``unit`` and ``variant`` are the experiment's assignment (None outside one).
        """
        assert served.batcher is not None  # nosec B101
        started = time.perf_counter()
        outputs = await served.batcher.predict(rows)
        request_id = request_id or (uuid.uuid4().hex if self.prediction_log else None)
        for shadow in deployment.shadows:
            target = deployment.versions.get(shadow)
            if target is not None and target.batcher is not None and target is not served:
                task = asyncio.get_running_loop().create_task(
                    self._shadow(deployment, target, rows.copy(), request_id, unit)
                )
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        if self.prediction_log is not None:
            if variant is None:
                variant = "primary" if len(deployment.versions) == 1 else served.spec.version
            experiment = (
                deployment.assignment.experiment if unit and deployment.assignment else None
            )
            self._log(
                served, rows, outputs, request_id, started, variant,
                unit=unit, experiment=experiment, revision=deployment.revision,
            )  # fmt: skip
        return outputs

    async def _shadow(
        self,
        deployment: Deployment,
        served: ServedModel,
        rows: Array,
        request_id: str | None,
        unit: str | None = None,
    ) -> None:
        assert served.batcher is not None  # nosec B101
        started = time.perf_counter()
        try:
            outputs = await served.batcher.predict(rows)
        except Exception as exc:  # noqa: BLE001 - the shadow never affects the caller
            _log.warning("shadow failed", model=deployment.name, error=str(exc))
            return
        if self.prediction_log is not None:
            experiment = (
                deployment.assignment.experiment if unit and deployment.assignment else None
            )
            self._log(
                served, rows, outputs, request_id, started, "shadow",
                unit=unit, experiment=experiment, revision=deployment.revision, shadow=True,
            )  # fmt: skip

    def _log(
        self,
        served: ServedModel,
        rows: Array,
        outputs: dict[str, Array],
        request_id: str | None,
        started: float,
        variant: str,
        *,
        unit: str | None = None,
        experiment: str | None = None,
        revision: int | None = None,
        shadow: bool = False,
    ) -> None:
        assert self.prediction_log is not None  # nosec B101
        signature = served.signature
        self.prediction_log.log(
            {
                "request_id": request_id or uuid.uuid4().hex,
                "ts": now_ms(),
                "model": served.spec.name,
                "version": served.spec.version,
                "variant": variant,
                "latency_ms": (time.perf_counter() - started) * 1000.0,
                "features": rows,
                "outputs": outputs,
                "unit": unit,
                "experiment": experiment,
                "shadow": shadow,
                "revision": revision,
                "columns": signature.columns if signature is not None else (),
            }
        )


def _depth_of(batcher: Batcher) -> Callable[[], int]:
    return lambda: batcher.queued_rows


class _NotReadyError(BackendUnavailableError):
    """A served version failed to load or is still loading (503)."""


class _UnauthenticatedError(GhafError):
    """No or a refused credential (401; the one status decided outside the table)."""


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _request_id(value: Any) -> str | None:
    """The caller's id of a ``/predict`` request (``{"id": ..., "records": [...]}``): the
    prediction log's request id, answered back, that outcomes are reported against."""
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 256:
        raise InvalidInputError(
            '"id" must be a non-empty string of at most 256 characters',
            hint='e.g. {"id": "tx-123", "records": [...]}; report its outcome with that id',
        )
    return value


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _unit_of(
    deployment: Deployment,
    header: str | None,
    parameters: dict[str, Any],
    inputs: dict[str, Any],
) -> str | None:
    """The experiment unit of a request: where the experiment says it is, or the
    ``x-ghaf-unit`` header; None outside an experiment or when the request has none."""
    if deployment.assignment is None:
        return None
    kind, name = deployment.unit_kind, deployment.unit_name
    if kind == "parameter":
        value = parameters.get(name)
    elif kind == "input":
        value = inputs.get(name)
        if value is not None and hasattr(value, "ravel"):
            flat = value.ravel()
            value = flat[0].item() if len(flat) else None
        elif isinstance(value, list):
            value = value[0] if value else None
    else:
        value = header if name == UNIT_HEADER else None
    if value is None and kind != "header":
        value = header
    return None if value is None or value == "" else str(value)


async def _reply(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*(headers or _JSON), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _reply_error(send: Send, exc: Exception) -> int:
    """Map an exception to its HTTP status through :mod:`ghaf.http_status` and reply."""
    headers = list(_JSON)
    if isinstance(exc, GhafError):
        status = http_status_for(exc)
        if isinstance(exc, OverloadedError):
            headers.append((b"retry-after", str(exc.retry_after).encode()))
        if status >= 500:
            _log.warning("request failed", status=status, error=exc.headline)
    else:
        _log.error("inference failed", error=f"{type(exc).__name__}: {exc}")
        status = 500
        exc = GhafError("internal error while scoring; see the server log")
    message = exc.headline if isinstance(exc, GhafError) else str(exc)
    if isinstance(exc, GhafError) and exc.hint and status < 500:
        message = f"{message} ({exc.hint})"
    await _reply(send, status, error_body(message), headers)
    return status


__all__ = ["Deployment", "ServingApp"]
