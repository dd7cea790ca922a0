"""Running a pipeline: caching, dispatch to an executor, retries, timeouts, cancellation."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ghaf.backends import open_executor
from ghaf.cost.base import Usage
from ghaf.errors import AlreadyExistsError
from ghaf.logs import new_id
from ghaf.metadata.base import utcnow
from ghaf.pipelines.base import Executor, PipelineRun
from ghaf.pipelines.metering import step_usage
from ghaf.pipelines.pipeline import Node, Pipeline
from ghaf.pipelines.records import find_cached, finish_run, get_run, start_run, update_step
from ghaf.pipelines.worker import StepResult, StepTask
from ghaf.platform import Platform
from ghaf.scheduling.quotas import check_quota
from ghaf.security.identity import Actor
from ghaf.settings import GhafSettings

Listener = Callable[[str, str, str], None]
"""Called with (event, step, detail): started, retry, succeeded, cached, failed, cancelled."""


def settings_for_workers(settings: GhafSettings) -> dict[str, Any]:
    """The settings a worker process needs to open the same artifact store."""
    body = settings.model_dump(mode="json")
    if settings.security.kek is not None:
        body["security"]["kek"] = settings.security.kek.get_secret_value()
    return body


def cache_key(node: Node, constants: dict[str, Any], inputs: dict[str, str]) -> str:
    """SHA-256 over the step's code digest, its parameters and its input digests."""
    body = {"code": node.step.code_digest, "params": constants, "inputs": inputs}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class _Attempt:
    node: Node
    step_run_id: str
    attempt: int
    key: str
    handle: Any
    started: float
    deadline: float | None


class _Interrupt:
    """Turns SIGINT into a flag the loop checks between writes (main thread only)."""

    def __init__(self) -> None:
        self.flag = threading.Event()
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, lambda *_: self.flag.set())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _Run:
    def __init__(
        self,
        platform: Platform,
        actor: Actor,
        pipeline: Pipeline,
        executor: Executor,
        params: dict[str, Any],
        listener: Listener,
    ) -> None:
        self.platform, self.actor, self.pipeline = platform, actor, pipeline
        self.executor, self.params, self.emit = executor, params, listener
        self.run_id = new_id()
        self.ids = {name: new_id() for name in pipeline.nodes}
        self.outputs: dict[str, tuple[str, str]] = {}
        self.logs: dict[str, list[str]] = {name: [] for name in pipeline.nodes}
        self.pending = list(pipeline.nodes.values())
        self.running: dict[int, _Attempt] = {}
        self.retries: list[tuple[float, Node, int, str]] = []
        self.worker_settings = settings_for_workers(platform.settings)
        self.status: str = "succeeded"
        self.error: str | None = None

    def update(
        self,
        node: Node,
        status: str,
        lineage: list[tuple[str, str]] | None = None,
        usage: Usage | None = None,
        **fields: Any,
    ) -> None:
        update_step(
            self.platform,
            self.actor,
            self.run_id,
            self.ids[node.name],
            status=status,
            lineage=lineage,
            fields=fields,
            usage=usage,
        )

    def inputs_of(self, node: Node) -> dict[str, tuple[str, str]]:
        return {k: self.outputs[v.name] for k, v in node.kwargs.items() if isinstance(v, Node)}

    def lineage_of(self, node: Node) -> list[tuple[str, str]]:
        edges = [(f"run:{self.ids[u]}", "input_to") for u in node.upstream]
        edges += [(source, "read_by") for source in node.lineage]
        return edges

    def launch(self, node: Node, attempt: int, key: str) -> None:
        task = StepTask(
            step_run_id=self.ids[node.name],
            node=node.name,
            step=node.step,
            constants=self.pipeline.constants(node, self.params),
            inputs=self.inputs_of(node),
            attempt=attempt,
            settings=self.worker_settings,
            run_id=self.run_id,
            actor=self.actor,
        )
        handle = self.executor.submit(task)
        timeout = node.step.options.timeout_s
        now = time.monotonic()
        self.running[id(handle)] = _Attempt(
            node, task.step_run_id, attempt, key, handle, now, now + timeout if timeout else None
        )
        fields: dict[str, Any] = {"attempts": attempt}
        if attempt == 1:
            fields.update(
                cache_key=key,
                started_at=utcnow(),
                inputs={k: d for k, (d, _) in task.inputs.items()},
            )
        self.update(node, "running", **fields)
        self.emit("started" if attempt == 1 else "retry", node.name, f"attempt {attempt}")

    def start_ready(self) -> None:
        for node in list(self.pending):
            if len(self.running) >= self.executor.capacity:
                return
            if any(u not in self.outputs for u in node.upstream):
                continue
            self.pending.remove(node)
            constants = self.pipeline.constants(node, self.params)
            digests = {k: d for k, (d, _) in self.inputs_of(node).items()}
            key = cache_key(node, constants, digests)
            hit = find_cached(self.platform, node.name, key) if node.step.options.cache else None
            if hit is not None and hit.output_digest and hit.output_kind:
                now = utcnow()
                self.outputs[node.name] = (hit.output_digest, hit.output_kind)
                self.update(
                    node,
                    "cached",
                    cache_key=key,
                    output_digest=hit.output_digest,
                    output_kind=hit.output_kind,
                    started_at=now,
                    finished_at=now,
                    duration_s=0.0,
                    inputs=digests,
                    lineage=[
                        *self.lineage_of(node),
                        (f"run:{hit.id}", "cached_as"),
                        (f"run:{self.run_id}", "step_of"),
                    ],
                )
                self.emit("cached", node.name, hit.output_digest[:12])
                continue
            self.launch(node, 1, key)

    def finished(self, attempt: _Attempt, result: StepResult) -> None:
        node = attempt.node
        self.logs[node.name].append(f"--- attempt {attempt.attempt} ---\n{result.log}")
        usage = step_usage(
            attempt.step_run_id,
            attempt.attempt,
            self.run_id,
            node.step.options.resources,
            result,
            time.monotonic() - attempt.started,
        )
        if result.ok and result.digest and result.kind:
            self.outputs[node.name] = (result.digest, result.kind)
            self.update(
                node,
                "succeeded",
                output_digest=result.digest,
                output_kind=result.kind,
                error=None,
                log_digest=self.store_log(node),
                cpu_s=result.cpu_s,
                max_rss_mb=result.max_rss_mb,
                finished_at=utcnow(),
                duration_s=time.monotonic() - attempt.started,
                lineage=[*self.lineage_of(node), (f"run:{self.run_id}", "step_of")],
                usage=usage,
            )
            self.emit("succeeded", node.name, f"{result.wall_s:.2f}s")
            return
        error = result.error or "failed"
        if attempt.attempt <= node.step.options.retries:
            delay = node.step.options.backoff_s * 2 ** (attempt.attempt - 1)
            self.retries.append((time.monotonic() + delay, node, attempt.attempt + 1, attempt.key))
            self.update(node, "running", error=f"attempt {attempt.attempt}: {error}", usage=usage)
            self.emit("retry", node.name, f"{error}; retrying in {delay:.1f}s")
            return
        self.update(
            node,
            "failed",
            error=error,
            log_digest=self.store_log(node),
            finished_at=utcnow(),
            duration_s=time.monotonic() - attempt.started,
            cpu_s=result.cpu_s,
            usage=usage,
        )
        self.emit("failed", node.name, error)
        self.status = "failed"
        self.error = f"step {node.name} failed after {attempt.attempt} attempt(s): {error}"

    def store_log(self, node: Node) -> str:
        return self.platform.artifacts.put_bytes("".join(self.logs[node.name]).encode()).digest

    def cancel_all(self) -> None:
        for attempt in list(self.running.values()):
            self.executor.cancel(attempt.handle)
            self.emit("cancelled", attempt.node.name, "")
        self.running.clear()

    def loop(self, interrupt: _Interrupt) -> None:
        while True:
            if interrupt.flag.is_set():
                self.status, self.error = "cancelled", "interrupted (SIGINT)"
                self.cancel_all()
                return
            if self.status == "failed":
                self.cancel_all()
                return
            now = time.monotonic()
            for due in [r for r in self.retries if r[0] <= now]:
                if len(self.running) < self.executor.capacity:
                    self.retries.remove(due)
                    self.launch(due[1], due[2], due[3])
            self.start_ready()
            if not self.running and not self.retries:
                return
            waits = [0.2] + [r[0] - now for r in self.retries]
            waits += [a.deadline - now for a in self.running.values() if a.deadline]
            handles = [a.handle for a in self.running.values()]
            for handle, result in self.executor.wait(handles, max(min(waits), 0.0)):
                self.finished(self.running.pop(id(handle)), result)
            now = time.monotonic()
            for key, attempt in list(self.running.items()):
                if attempt.deadline is not None and now > attempt.deadline:
                    self.executor.cancel(attempt.handle)
                    del self.running[key]
                    limit = attempt.node.step.options.timeout_s
                    timed_out = StepResult(
                        ok=False, error=f"timed out after {limit:g}s", failure="timeout"
                    )
                    self.finished(attempt, timed_out)


def run_pipeline(
    platform: Platform,
    actor: Actor,
    pipeline: Pipeline,
    *,
    params: dict[str, Any] | None = None,
    executor: Executor | None = None,
    trigger: str = "manual",
    listener: Listener | None = None,
) -> PipelineRun:
    """Run ``pipeline``; returns the recorded run (status succeeded, failed or cancelled).

    Steps whose cache key (code digest, parameters, input digests) matches an earlier
    successful step run reuse its output without running. SIGINT (Ctrl-C) stops the
    workers, marks the run cancelled and stores nothing for the unfinished steps.
    """
    values = pipeline.resolve_params(params)
    # Refused before anything is recorded: a project over its CPU- or GPU-hours quota.
    check_quota(
        platform,
        platform.default_project,
        cpus=max((n.step.options.resources.cpu for n in pipeline.nodes.values()), default=0),
        gpus=max((n.step.options.resources.gpu for n in pipeline.nodes.values()), default=0),
    )
    own_executor = executor is None
    chosen: Executor = executor or open_executor(platform.settings)
    run = _Run(platform, actor, pipeline, chosen, values, listener or (lambda *_: None))
    specs = [
        {
            "id": run.ids[name],
            "step": name,
            "cache_key": "",
            "code_digest": node.step.code_digest,
            "resources": {
                "cpu": node.step.options.resources.cpu,
                "gpu": node.step.options.resources.gpu,
                "memory_mb": node.step.options.resources.memory_mb,
            },
        }
        for name, node in pipeline.nodes.items()
    ]
    start_run(
        platform,
        actor,
        pipeline.name,
        run_id=run.run_id,
        executor=chosen.name,
        trigger=trigger,
        params=values,
        steps=specs,
    )
    try:
        with _Interrupt() as interrupt:
            try:
                run.loop(interrupt)
            except BaseException:
                run.cancel_all()
                run.status, run.error = "failed", run.error or "the runner itself failed"
                raise
            finally:
                with contextlib.suppress(AlreadyExistsError):  # a cancel recorded it first
                    finish_run(platform, actor, run.run_id, status=run.status, error=run.error)
    finally:
        if own_executor:
            chosen.close()
    # A missing or broken bus never fails a finished run.
    with contextlib.suppress(Exception):
        platform.events.publish(
            "pipeline.finished",
            {"pipeline": pipeline.name, "run": run.run_id, "status": run.status},
        )
    return get_run(platform, run.run_id)


def output_of(platform: Platform, run: PipelineRun, step: str) -> Any:
    """Load a step's stored output of ``run`` (as the downstream step would receive it).

    A file or directory output comes back as a path in the home's scratch space, kept
    until this process exits.
    """
    from pathlib import Path

    from ghaf.artifacts.scratch import process_scratch_dir, release
    from ghaf.errors import NotFoundError
    from ghaf.pipelines import values

    record = run.step(step)
    if record.output_digest is None or record.output_kind is None:
        raise NotFoundError(f"step {step} of run {run.id} has no output ({record.status})")
    scratch = process_scratch_dir(platform.settings.home, "output-")
    try:
        value = values.load(platform.artifacts, record.output_digest, record.output_kind, scratch)
    except BaseException:
        release(scratch)
        raise
    if not isinstance(value, Path):  # read into memory: nothing needs the directory
        release(scratch)
    return value
