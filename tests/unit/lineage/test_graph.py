"""Lineage graph: links inside governed operations, upstream/downstream on a known graph."""

from __future__ import annotations

import pytest

from ghaf.errors import InvalidInputError, SpineBypassError
from ghaf.lineage import deployments_using, downstream, edges_of, link, upstream
from ghaf.lineage.graph import Edge, models_using
from ghaf.platform import Platform
from ghaf.security.identity import Actor

EDGES = [
    ("dataset:raw:1", "transform:t1", "input"),
    ("transform:t1", "dataset:clean:1", "output"),
    ("dataset:clean:1", "feature_view:fv:1", "input"),
    ("feature_view:fv:1", "run:r1", "input"),
    ("dataset:other:1", "run:r1", "input"),
    ("run:r1", "model:fraud:1", "produced"),
    ("model:fraud:1", "deployment:prod", "serves"),
    ("dataset:raw:2", "run:r2", "input"),
    ("run:r2", "model:fraud:2", "produced"),
]


def _build(platform: Platform, actor: Actor, edges: list[tuple[str, str, str]]) -> None:
    # A governed operation opened directly: tests must not register new actions.
    with platform.spine.operation(actor, "lineage.test", "lineage:test", "default"):
        for src, dst, relation in edges:
            link(src, dst, relation)


@pytest.fixture
def graph(platform: Platform) -> Platform:
    _build(platform, platform.admin(), EDGES)
    _build(platform, platform.admin(), EDGES[:2])  # idempotent
    return platform


def test_upstream_and_downstream(graph: Platform) -> None:
    assert upstream(graph, "deployment:prod") == sorted(
        [
            "model:fraud:1",
            "run:r1",
            "feature_view:fv:1",
            "dataset:other:1",
            "dataset:clean:1",
            "transform:t1",
            "dataset:raw:1",
        ]
    )
    assert downstream(graph, "dataset:raw:1") == sorted(
        [
            "transform:t1",
            "dataset:clean:1",
            "feature_view:fv:1",
            "run:r1",
            "model:fraud:1",
            "deployment:prod",
        ]
    )
    assert downstream(graph, "dataset:raw:2") == ["model:fraud:2", "run:r2"]
    assert upstream(graph, "dataset:raw:1") == []


def test_which_deployed_models_used_this_dataset(graph: Platform) -> None:
    assert deployments_using(graph, "dataset:raw:1") == ["deployment:prod"]
    assert deployments_using(graph, "dataset:raw:2") == []
    assert models_using(graph, "dataset:raw:2") == ["model:fraud:2"]


def test_edges_of(graph: Platform) -> None:
    assert edges_of(graph, "transform:t1") == [
        Edge("dataset:raw:1", "transform:t1", "input"),
        Edge("transform:t1", "dataset:clean:1", "output"),
    ]


def test_cycle_terminates(platform: Platform) -> None:
    _build(platform, platform.admin(), [("run:a", "run:b", "x"), ("run:b", "run:a", "x")])
    assert downstream(platform, "run:a") == ["run:b"]


def test_bad_node_and_outside_spine(platform: Platform) -> None:
    with pytest.raises(InvalidInputError, match="widget"):
        upstream(platform, "widget:1")
    with pytest.raises(SpineBypassError):
        link("run:a", "run:b", "x")
