"""The run API: ``with start_run(...) as run: run.log_metric(...)``, buffered and cheap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from ghaf.artifacts.scratch import scratch_dir
from ghaf.cost.base import Usage
from ghaf.cost.meter import ProcessMeter, enclosing_scope
from ghaf.errors import InvalidInputError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.tracking import service
from ghaf.tracking.env import capture_environment
from ghaf.tracking.writer import PointBuffer, writer

DEFAULT_FLUSH_INTERVAL = 1.0
"""Seconds between background flushes: the most a ``kill -9`` can lose."""
MAX_BUFFER = 50_000
"""Points buffered before the writer is woken early."""

_stack = threading.local()


def _runs_stack() -> list[ActiveRun]:
    stack: list[ActiveRun] | None = getattr(_stack, "runs", None)
    if stack is None:
        stack = []
        _stack.runs = stack
    return stack


def active_run() -> ActiveRun | None:
    """The innermost run started in this thread and not yet ended."""
    stack = _runs_stack()
    return stack[-1] if stack else None


class ActiveRun:
    """A run in progress. Logging appends to memory; a background thread writes batches."""

    def __init__(
        self,
        platform: Platform,
        actor: Actor,
        run_id: str,
        experiment: str,
        *,
        parent_run_id: str | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        within: str | None = None,
    ) -> None:
        self.platform = platform
        self.actor = actor
        self.run_id = run_id
        self.experiment = experiment
        self.parent_run_id = parent_run_id
        self.status = "running"
        self._buffer = PointBuffer()
        self._append = self._buffer.points.append
        self._next_step: dict[str, int] = {}
        self._params: dict[str, str] = {}
        self._pending_params: dict[str, str] = {}
        self._pending_tags: dict[str, str] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._writer = writer(flush_interval)
        self._writer.add(self)
        # What the run holds and uses, recorded with its end (its cost); ``within``: the
        # enclosing run or pipeline step whose record already counts this process's use.
        self._within = within
        self._started_at = utcnow()
        self._meter = ProcessMeter(sample_interval=platform.settings.cost.sample_interval_s)
        self._meter.start()

    # Hot path ---------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Buffer one point; ``step`` defaults to one past this key's last step."""
        last = self._next_step.get(key)
        if last is None:
            service.check_key("metric", key)
            last = 0
        if step is None:
            step = last
        self._next_step[key] = step + 1
        number = float(value)
        if number != number:
            raise InvalidInputError(f"metric {key!r} is NaN", hint="log a finite number")
        self._append((key, number, step, time.time()))
        if len(self._buffer.points) >= MAX_BUFFER:
            self._writer.wake()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Buffer one point per key, all at ``step``."""
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    # Params, tags, inputs, artifacts ------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Buffer params; a key already logged with another value raises at once."""
        with self._lock:
            for key, value in params.items():
                text = str(value)
                if self._params.get(key, text) != text:
                    raise InvalidInputError(
                        f"param {key!r} is already {self._params[key]!r}, not {text!r}",
                        hint="params are set once per run; log a metric or a tag to vary a value",
                    )
                service.check_key("param", key)
                self._params[key] = text
                self._pending_params[key] = text

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with self._lock:
            for key, value in tags.items():
                self._pending_tags[service.check_key("tag", key)] = str(value)

    def log_batch(
        self,
        metrics: Iterable[tuple[str, float, int]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> int:
        """Write ``(key, value, step)`` points, params and tags now, in one transaction."""
        now = time.time()
        points = [(k, float(v), int(s), now) for k, v, s in metrics]
        for key in {p[0] for p in points}:
            service.check_key("metric", key)
        if params:
            self.log_params(params)
        if tags:
            self.set_tags(tags)
        self.flush()
        with self._flush_lock:
            return service.log_batch(self.platform, self.actor, self.run_id, metrics=points)

    def log_input(self, *nodes: str) -> None:
        """Record dataset or feature versions this run used, e.g. ``dataset:transactions:3``."""
        service.log_inputs(self.platform, self.actor, self.run_id, list(nodes))

    def log_artifact(self, local_path: Path | str, artifact_path: str | None = None) -> list[str]:
        """Store a file or a directory's files; returns the artifact paths recorded."""
        source = Path(local_path)
        if source.is_dir():
            prefix = (artifact_path or source.name).strip("/")
            files = {
                f"{prefix}/{p.relative_to(source).as_posix()}": p
                for p in sorted(source.rglob("*"))
                if p.is_file()
            }
        elif source.is_file():
            name = (
                source.name
                if artifact_path is None
                else f"{artifact_path.strip('/')}/{source.name}"
            )
            files = {name: source}
        else:
            raise InvalidInputError(f"artifact {source} does not exist", hint="check the path")
        entries = {}
        for path, file in files.items():
            info = self.platform.artifacts.put(file)
            entries[path] = (info.digest, info.size)
        service.record_artifacts(self.platform, self.actor, self.run_id, entries)
        return list(entries)

    def log_model(
        self, model: Any, name: str = "model", *, flavor: str | None = None, **options: Any
    ) -> str:
        """Save ``model`` with its flavor as artifacts under ``name``; returns its source
        (``run:<id>/<name>``) for ``ghaf.registry.register_model``."""
        from ghaf.models.flavors import save_model

        with scratch_dir(self.platform.settings.home, "log-model-") as tmp:
            directory = tmp / name
            save_model(model, directory, flavor=flavor, **options)
            self.log_artifact(directory, name)
        return f"run:{self.run_id}/{name}"

    # Flushing and ending --------------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered now (the writer thread calls this periodically)."""
        with self._flush_lock:
            points = self._buffer.drain()
            with self._lock:
                params, self._pending_params = self._pending_params, {}
                tags, self._pending_tags = self._pending_tags, {}
            if not (points or params or tags):
                return
            try:
                service.log_batch(
                    self.platform, self.actor, self.run_id, metrics=points, params=params, tags=tags
                )
            except BaseException:
                self._buffer.points.extendleft(reversed(points))
                with self._lock:
                    self._pending_params = {**params, **self._pending_params}
                    self._pending_tags = {**tags, **self._pending_tags}
                raise

    def end(self, status: str = "finished") -> None:
        """Flush, then mark the run ended; safe to call twice."""
        if self.status != "running":
            return
        try:
            self.flush()
        finally:
            self._writer.discard(self)
            stack = _runs_stack()
            if self in stack:
                stack.remove(self)
            self.status = status
            service.end_run(self.platform, self.actor, self.run_id, status, usage=self._usage())

    def _usage(self) -> Usage:
        reading = self._meter.stop()
        return Usage(
            kind="run",
            ref=self.run_id,
            started_at=self._started_at,
            ended_at=self._started_at + timedelta(seconds=reading.wall_s),
            wall_s=reading.wall_s,
            cpu_s=reading.cpu_s,
            memory_peak_gb=reading.memory_peak_gb,
            memory_gb_hours=reading.memory_gb_hours,
            gpu_class=reading.gpu_class,
            gpu_s=reading.gpu_s,
            parent=self.parent_run_id,
            within=self._within,
        )

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("finished")
        elif issubclass(exc_type, KeyboardInterrupt | SystemExit):
            self.end("killed")
        else:
            self.end("failed")

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r}, experiment={self.experiment!r})"


def start_run(
    name: str | None = None,
    *,
    experiment: str = "default",
    platform: Platform | None = None,
    actor: Actor | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    inputs: Sequence[str] = (),
    flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    capture_env: bool = True,
    project: str | None = None,
) -> ActiveRun:
    """Start a run (use it as a context manager).

    Args:
        name: the run's display name (default: the first 8 characters of its id).
        experiment: created when missing.
        platform: default: the platform built from the settings.
        actor: who runs it; default: the platform's admin (the local user).
        nested: make it a child of the innermost active run of this thread.
        parent_run_id: make it a child of this run.
        inputs: lineage node ids of the data it uses, e.g. ``dataset:transactions:3``.
        flush_interval: seconds between background flushes (what ``kill -9`` can lose).
        capture_env: record Python, packages, hardware and the git commit.
    """
    if platform is None:
        from ghaf.tracking.default import default_platform

        platform = default_platform()
    actor = actor or platform.admin()
    if nested and parent_run_id is None:
        parent = active_run()
        parent_run_id = parent.run_id if parent is not None else None
    enclosing = active_run()  # in this thread, it already meters this process
    within = f"run:{enclosing.run_id}" if enclosing is not None else enclosing_scope()
    run_id = service.create_run(
        platform,
        actor,
        experiment,
        name=name,
        parent_run_id=parent_run_id,
        env=capture_environment() if capture_env else {},
        tags={k: str(v) for k, v in (tags or {}).items()},
        project=project,
    )
    run = ActiveRun(
        platform,
        actor,
        run_id,
        experiment,
        parent_run_id=parent_run_id,
        flush_interval=flush_interval,
        within=within,
    )
    _runs_stack().append(run)
    if params:
        run.log_params(params)
    if inputs:
        run.log_input(*inputs)
    return run
