"""A pipeline: a DAG of step invocations; edges are outputs fed to inputs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ghaf.errors import InvalidInputError
from ghaf.pipelines.step import Step

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Param:
    """A run-time parameter of the pipeline, with its default."""

    name: str
    default: Any = None


@dataclass(frozen=True)
class Node:
    """One invocation of a step in a pipeline; pass it to another step to feed its output."""

    name: str
    step: Step
    kwargs: dict[str, Any] = field(hash=False)
    lineage: tuple[str, ...] = ()

    @property
    def upstream(self) -> list[str]:
        return [v.name for v in self.kwargs.values() if isinstance(v, Node)]


class Pipeline:
    """Steps and the edges between them, in the order they were added (a valid topological one).

    Example::

        p = Pipeline("train")
        data = p.add(load, rows=p.param("rows", 1000))
        model = p.add(fit, data=data)
    """

    def __init__(self, name: str, description: str = "") -> None:
        if not _NAME.match(name):
            raise InvalidInputError(
                f"pipeline name {name!r} is invalid", hint="letters, digits, '_', '.', '-'"
            )
        self.name = name
        self.description = description
        self.nodes: dict[str, Node] = {}
        self.params: dict[str, Param] = {}

    def param(self, name: str, default: Any = None) -> Param:
        """Declare a run-time parameter (overridable per run)."""
        param = Param(name, default)
        self.params[name] = param
        return param

    def add(
        self, step: Step, *, name: str | None = None, lineage: tuple[str, ...] = (), **kwargs: Any
    ) -> Node:
        """Add an invocation of ``step``; ``kwargs`` are constants, params or upstream nodes.

        ``lineage`` names lineage nodes the step reads (e.g. ``dataset:transactions:3``).
        """
        if not isinstance(step, Step):
            raise InvalidInputError(
                f"{step!r} is not a step", hint="decorate the function with @step"
            )
        node_name = name or step.name
        if node_name in self.nodes:
            raise InvalidInputError(
                f"pipeline {self.name} already has a step named {node_name!r}",
                hint="pass name= to add the same step twice",
            )
        unknown = set(kwargs) - set(step.parameters)
        if unknown:
            raise InvalidInputError(
                f"step {step.name} has no parameter {sorted(unknown)[0]!r}",
                hint=f"its parameters: {', '.join(step.parameters)}",
            )
        for key, value in kwargs.items():
            if isinstance(value, Node) and value.name not in self.nodes:
                raise InvalidInputError(
                    f"{node_name}.{key} refers to step {value.name!r} outside this pipeline",
                    hint="add the upstream step to this pipeline first",
                )
            if not isinstance(value, Node | Param):
                try:
                    json.dumps(value)
                except TypeError as exc:
                    raise InvalidInputError(
                        f"{node_name}.{key} is a {type(value).__name__}, not JSON-able",
                        hint="pass data between steps as step outputs; constants must be JSON",
                    ) from exc
        node = Node(node_name, step, dict(kwargs), tuple(lineage))
        self.nodes[node_name] = node
        return node

    def resolve_params(self, overrides: dict[str, Any] | None) -> dict[str, Any]:
        """The run's parameter values: defaults with ``overrides`` applied."""
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(self.params)
        if unknown:
            raise InvalidInputError(
                f"pipeline {self.name} has no parameter {sorted(unknown)[0]!r}",
                hint=f"its parameters: {', '.join(self.params) or '(none)'}",
            )
        return {name: overrides.get(name, p.default) for name, p in self.params.items()}

    def constants(self, node: Node, params: dict[str, Any]) -> dict[str, Any]:
        """A node's non-step inputs with params substituted."""
        return {
            key: params[value.name] if isinstance(value, Param) else value
            for key, value in node.kwargs.items()
            if not isinstance(value, Node)
        }
