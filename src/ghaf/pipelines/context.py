"""What a running step may ask of the run it belongs to: the platform, the actor, its ids.

Steps run in worker processes. A step that acts on the platform (tracks a training run,
registers a model) uses the runner's own settings and acts as the run's actor from here,
rather than taking a home or a principal as parameters: parameters are recorded on the
run and anyone could set them, so an actor passed that way could be forged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from ghaf.errors import InvalidInputError, PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security.identity import Actor


@dataclass(frozen=True)
class StepContext:
    """The run and step run a step executes for, who started the run, the open platform."""

    run_id: str
    step_run_id: str
    platform: Platform
    started_by: Actor | None

    @property
    def actor(self) -> Actor:
        """Who the step acts as: the actor that started the pipeline run.

        Raises:
            PermissionDeniedError: the task came without an actor (built outside the runner).
        """
        if self.started_by is None:
            raise PermissionDeniedError(
                f"step run {self.step_run_id} carries no actor",
                hint="run the pipeline with ghaf.pipelines.run_pipeline",
            )
        return self.started_by

    @property
    def node(self) -> str:
        """This step run's lineage node id, ``run:<step run id>``."""
        return f"run:{self.step_run_id}"


_CURRENT: ContextVar[StepContext | None] = ContextVar("ghaf_step_context", default=None)


def current_step() -> StepContext:
    """The context of the step running now (inside a worker).

    Raises:
        InvalidInputError: called outside a pipeline step.
    """
    context = _CURRENT.get()
    if context is None:
        raise InvalidInputError(
            "this is not running inside a pipeline step",
            hint="run the step in a pipeline (run_pipeline), not by calling it directly",
        )
    return context


@contextmanager
def step_context(context: StepContext) -> Iterator[StepContext]:
    """Make ``context`` the current step's while the block runs (the worker does this)."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)
