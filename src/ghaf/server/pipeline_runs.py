"""Pipeline runs the control plane starts: the allowed pipelines, and one runner process each.

The server runs only pipelines its operator declared (``settings.pipelines``: the
``MODULE:ATTRIBUTE`` targets ``ghaf pipelines run`` takes). A client names one of them
and gives parameters; it never sends code or a path, so nothing a client says is
imported. Steps act as the proven caller who submitted the run, in its project, as they
would in embedded mode.

Each submitted run gets a runner process of its own (``python -m
ghaf.server.pipeline_runs``) whose main thread calls
:func:`~ghaf.pipelines.run_pipeline`, so the runner's own interrupt path (what Ctrl-C
does in a terminal: stop the workers, record the run cancelled) is how a run is
stopped. Any worker process of the server may receive the cancel: it records the run
cancelled (``pipeline.run_finish``), and the runner process, which reads its run's
record twice a second, interrupts itself. It does the same when the server process that
started it is gone, so a stopped server leaves no run unsupervised.

The runner process gets the settings (the key-encryption key included) and the proven
actor on its standard input, as step workers get them from the runner: a pipe between
the server's own processes, never an argument or a variable.
"""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import subprocess  # nosec B404
import sys
import threading
import time
from typing import IO, Any, cast

import orjson

import ghaf.errors
from ghaf.errors import BackendUnavailableError, GhafError, NotFoundError
from ghaf.logs import get_logger
from ghaf.platform import Platform
from ghaf.security.identity import Actor, Credential

START_TIMEOUT_S = 120.0
"""How long a submission waits for its runner to record the run."""
WATCH_INTERVAL_S = 0.5
"""How often a runner reads its run's record for a cancel."""
_log = get_logger(__name__)
_runners: list[subprocess.Popen[bytes]] = []
_runners_lock = threading.Lock()


def allowed_pipeline(pipelines: list[str], target: str) -> Any:
    """The :class:`~ghaf.pipelines.Pipeline` ``target`` names, if the server runs it.

    Raises:
        NotFoundError: ``target`` is not one of ``pipelines`` (nothing is imported).
        InvalidInputError: the declared target is not a pipeline.
    """
    if target not in pipelines:
        raise NotFoundError(
            f"pipeline {target!r} is not one this server runs",
            hint="GET /api/v1/pipelines lists them (ghaf pipelines available); the operator "
            "declares them in the pipelines setting",
        )
    from ghaf.pipelines.loader import load_pipeline

    return load_pipeline(target)


def _actor_json(actor: Actor) -> dict[str, Any]:
    return {**dataclasses.asdict(actor), "roles": sorted(actor.roles)}


def _actor_from(body: dict[str, Any]) -> Actor:
    credential = body.pop("credential")
    return Actor(
        **{**body, "roles": frozenset(body["roles"])},
        credential=Credential(**credential) if credential else None,
    )


def _reap() -> None:
    with _runners_lock:
        _runners[:] = [p for p in _runners if p.poll() is None]


def start_run(platform: Platform, actor: Actor, target: str, params: dict[str, Any]) -> str:
    """Start ``target`` in ``platform``'s project as ``actor`` in a runner process; the
    run's id once the runner has recorded it.

    Raises:
        GhafError: what the runner raised before the run was recorded (the pipeline is
            not allowed, a parameter it does not have, the actor may not run it...).
        BackendUnavailableError: the runner did not record the run in time.
    """
    from ghaf.pipelines.runner import settings_for_workers

    # Refused here, before a process starts: a pipeline not allowed, a parameter it lacks.
    allowed_pipeline(platform.settings.pipelines, target).resolve_params(params)
    _reap()
    reader, writer = os.pipe()
    payload = {
        "settings": settings_for_workers(platform.settings),
        "actor": _actor_json(actor),
        "target": target,
        "params": params,
        "parent": os.getpid(),
        "answer_fd": writer,
    }
    try:
        # Our own module, with fixed arguments and no shell.
        runner = subprocess.Popen(  # nosec B603
            [sys.executable, "-m", "ghaf.server.pipeline_runs"],
            stdin=subprocess.PIPE,
            pass_fds=(writer,),
        )
    finally:
        os.close(writer)
    with _runners_lock:
        _runners.append(runner)
    with os.fdopen(reader, "rb") as answers:
        work = cast(IO[bytes], runner.stdin)
        work.write(orjson.dumps(payload))
        work.close()
        answer = _answer(runner, answers, START_TIMEOUT_S)
    if "run_id" in answer:
        return str(answer["run_id"])
    raise _error_of(answer.get("error") or {})


def _answer(runner: subprocess.Popen[bytes], answers: Any, timeout: float) -> dict[str, Any]:
    """The runner's one line: the run's id or the error that kept it from starting."""
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([answers], [], [], max(deadline - time.monotonic(), 0.0))
        if not ready:
            runner.send_signal(signal.SIGINT)
            raise BackendUnavailableError(
                f"the pipeline runner did not start the run within {timeout:g}s",
                hint="retry; the server's log says what held it up",
            )
        chunk = os.read(answers.fileno(), 65536)
        if not chunk:
            break
        line += chunk
    if not line:
        return {"error": {"kind": "GhafError", "headline": "the pipeline runner exited"}}
    parsed: dict[str, Any] = orjson.loads(line)
    return parsed


def _error_of(body: dict[str, Any]) -> GhafError:
    cls = getattr(ghaf.errors, str(body.get("kind", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, GhafError)):
        cls = GhafError
    hint = body.get("hint")
    return cls(str(body.get("headline") or "the pipeline run failed to start"), hint=hint)


class _Announcing:
    """The run's executor, which tells the server the run's id at its first step."""

    def __init__(self, inner: Any, announce: Any) -> None:
        self.inner, self.announce = inner, announce
        self.name, self.capacity = inner.name, inner.capacity

    def submit(self, task: Any) -> Any:
        self.announce(task.run_id)
        return self.inner.submit(task)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, Any]]:
        result: list[tuple[Any, Any]] = self.inner.wait(handles, timeout)
        return result

    def cancel(self, handle: Any) -> None:
        self.inner.cancel(handle)

    def close(self) -> None:
        self.inner.close()


class _Runner:
    """The runner process's side: run, tell the server the id, stop when cancelled."""

    def __init__(self, platform: Platform, parent: int, answers: int) -> None:
        self.platform, self.parent, self.answers = platform, parent, answers
        self.run_id: str | None = None
        self.done = threading.Event()

    def announce(self, run_id: str) -> None:
        if self.run_id is not None:
            return
        self.run_id = run_id
        _say(self.answers, {"run_id": run_id})
        watcher = threading.Thread(target=self.watch, args=(run_id,), daemon=True)
        watcher.start()

    def watch(self, run_id: str) -> None:
        """Interrupt the run (as Ctrl-C does) once it is recorded cancelled, or once the
        server process that started it is gone."""
        from ghaf.pipelines.records import get_run

        while not self.done.wait(WATCH_INTERVAL_S):
            try:
                cancelled = get_run(self.platform, run_id).status == "cancelled"
            except Exception:  # noqa: BLE001 - a failed read is retried at the next pass
                _log.warning("pipeline runner could not read its run", run_id=run_id)
                continue
            if cancelled or os.getppid() != self.parent:
                os.kill(os.getpid(), signal.SIGINT)


def _say(answers: int, message: dict[str, Any]) -> None:
    """The one line the server waits for; then the pipe closes."""
    with os.fdopen(answers, "wb") as out:
        out.write(orjson.dumps(message) + b"\n")


def runner_main() -> None:
    """The runner process: its work on standard input, the run's id (or the error that
    kept it from starting) as one JSON line on the pipe the server passed."""
    from ghaf.backends import open_executor
    from ghaf.logs import configure_logging
    from ghaf.pipelines.runner import run_pipeline
    from ghaf.settings import GhafSettings

    # Only the runner's own handler (installed while the run loops) acts on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    work = orjson.loads(sys.stdin.buffer.read())
    settings = GhafSettings(**work["settings"])
    configure_logging(settings.log_format, settings.log_level)
    runner: _Runner | None = None
    try:
        with Platform(settings) as platform:
            runner = _Runner(platform, int(work["parent"]), int(work["answer_fd"]))
            pipeline = allowed_pipeline(platform.settings.pipelines, work["target"])
            executor = _Announcing(open_executor(platform.settings), runner.announce)
            try:
                run = run_pipeline(
                    platform,
                    _actor_from(work["actor"]),
                    pipeline,
                    params=work["params"],
                    executor=executor,
                )
            finally:
                runner.done.set()
                executor.close()
            runner.announce(run.id)  # every step was cached: the run ended at once
    except GhafError as exc:
        if runner is None or runner.run_id is None:
            error = {"kind": type(exc).__name__, "headline": exc.headline, "hint": exc.hint}
            _say(int(work["answer_fd"]), {"error": error})
        else:  # the run is recorded; its record says how it ended
            _log.warning("pipeline run ended with an error", run_id=runner.run_id, error=str(exc))


if __name__ == "__main__":
    runner_main()
