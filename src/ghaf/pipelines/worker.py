"""What runs inside a worker (a local process or a Ray task): load inputs, call, store output."""

from __future__ import annotations

import contextlib
import io
import os
import resource
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ghaf.artifacts.scratch import scratch_dir
from ghaf.cost.meter import ProcessMeter, metered_scope
from ghaf.pipelines.step import Step
from ghaf.security.identity import Actor

if TYPE_CHECKING:
    from ghaf.platform import Platform


@dataclass
class StepTask:
    """Everything a worker needs to run one attempt of one step."""

    step_run_id: str
    node: str
    step: Step
    constants: dict[str, Any]
    inputs: dict[str, tuple[str, str]]
    """Parameter name -> (digest, kind) of an upstream output."""
    attempt: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    actor: Actor | None = None
    """Who started the run; steps act as this actor (``ghaf.pipelines.context``)."""


@dataclass
class StepResult:
    """What came back: the stored output, or the error; resource use; the captured log."""

    ok: bool
    digest: str | None = None
    kind: str | None = None
    size: int = 0
    error: str | None = None
    cpu_s: float = 0.0
    max_rss_mb: float = 0.0
    wall_s: float = 0.0
    memory_gb_hours: float = 0.0
    """Sampled memory over the attempt (the average times its wall time)."""
    gpu_s: float = 0.0
    gpu_class: str | None = None
    log: str = ""
    failure: str = "error"
    """``error`` (the step raised), ``timeout``, ``killed`` (the worker died) or ``cancelled``."""


def _platform(settings: dict[str, Any]) -> Platform:
    from ghaf.platform import Platform
    from ghaf.settings import GhafSettings

    return Platform(GhafSettings(**settings))


def execute(task: StepTask, log: io.TextIOBase | None = None) -> StepResult:
    """Run ``task`` here; never raises for errors in the step (they come back in the result)."""
    from ghaf.pipelines import values
    from ghaf.pipelines.context import StepContext, step_context

    started = time.perf_counter()
    cpu0 = time.process_time()
    meter = ProcessMeter().start()
    capture = log or io.StringIO()
    platform: Platform | None = None
    try:
        with (
            contextlib.redirect_stdout(capture),
            contextlib.redirect_stderr(capture),
            contextlib.ExitStack() as stack,
        ):
            platform = _platform(task.settings)
            # Inputs are decrypted here: inside the home, removed when the step ends.
            scratch = stack.enter_context(scratch_dir(platform.settings.home, f"step-{task.node}-"))
            artifacts = platform.artifacts
            kwargs = dict(task.constants)
            for name, (digest, kind) in task.inputs.items():
                kwargs[name] = values.load(artifacts, digest, kind, scratch / "in")
            if "workdir" in task.step.parameters and "workdir" not in kwargs:
                workdir = scratch / "work"
                workdir.mkdir()
                kwargs["workdir"] = workdir
            context = StepContext(task.run_id, task.step_run_id, platform, task.actor)
            # A run the step tracks is recorded within this attempt's usage, not beside it.
            within = f"pipeline_step:{task.step_run_id}:{task.attempt}"
            with step_context(context), metered_scope(within):
                output = task.step.fn(**kwargs)
            digest, kind, size = values.store(artifacts, output, task.node)
        result = StepResult(ok=True, digest=digest, kind=kind, size=size)
    except Exception as exc:  # noqa: BLE001 - the step's error goes back to the runner
        print(traceback.format_exc(), file=capture)
        result = StepResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        if platform is not None:
            platform.close()
    result.wall_s = time.perf_counter() - started
    result.cpu_s = time.process_time() - cpu0
    result.max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reading = meter.stop()
    result.memory_gb_hours = reading.memory_gb_hours
    result.gpu_s, result.gpu_class = reading.gpu_s, reading.gpu_class
    if isinstance(capture, io.StringIO):
        result.log = capture.getvalue()[-1_000_000:]
    return result


def run_in_process(conn: Any, task: StepTask, log_path: str) -> None:
    """Entry point of a local worker process: run, send the result, exit."""
    import signal

    # Ctrl-C reaches the whole process group; the runner decides, and kills us if it must.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(log_path, "w", buffering=1) as log:  # noqa: PTH123
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        result = execute(task, log)
    conn.send(result)
    conn.close()
