"""The lineage graph: edges between node ids, written inside governed operations, and queries.

Node ids are strings ``KIND:...``: ``dataset:NAME:V``, ``transform:ID``,
``feature_view:NAME:V``, ``run:ID``, ``model:NAME:V``, ``deployment:NAME``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from ghaf.errors import InvalidInputError
from ghaf.lineage.tables import LineageEdgeRow
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.spine import current_session

NODE_KINDS = ("dataset", "transform", "feature_view", "run", "model", "deployment")
"""Kinds of node the graph knows."""


@dataclass(frozen=True, order=True)
class Edge:
    """``src`` fed ``dst``, as ``relation``."""

    src: str
    dst: str
    relation: str


def check_node(node: str) -> str:
    """Validate a node id: a known kind, a colon, a non-empty rest."""
    kind, _, rest = node.partition(":")
    if kind not in NODE_KINDS or not rest or len(node) > 300:
        raise InvalidInputError(
            f"lineage node {node!r} is not a node id",
            hint=f"use KIND:NAME[:VERSION] with KIND one of {', '.join(NODE_KINDS)}",
        )
    return node


def link(src: str, dst: str, relation: str) -> None:
    """Record that ``src`` fed ``dst``; call inside a governed operation. Idempotent."""
    check_node(src)
    check_node(dst)
    session = current_session()
    exists = session.execute(
        select(LineageEdgeRow.id).where(
            LineageEdgeRow.src == src,
            LineageEdgeRow.dst == dst,
            LineageEdgeRow.relation == relation,
        )
    ).first()
    if exists is None:
        session.add(LineageEdgeRow(src=src, dst=dst, relation=relation, created_at=utcnow()))
        session.flush()


def _walk(session: Session, node: str, *, up: bool) -> list[str]:
    """Nodes reachable from ``node`` against (``up``) or along the edges: one recursive query."""
    edges = LineageEdgeRow.__table__
    near, far = (edges.c.dst, edges.c.src) if up else (edges.c.src, edges.c.dst)
    seed = select(literal(node).label("node")).cte("reach", recursive=True)
    step = select(far.label("node")).join_from(edges, seed, near == seed.c.node)
    reach = seed.union(step)
    rows = session.execute(select(reach.c.node).where(reach.c.node != node)).scalars()
    return sorted(set(rows))


def upstream(platform: Platform, node: str) -> list[str]:
    """Every node that ``node`` was derived from, transitively (sorted)."""
    check_node(node)
    with platform.read_session() as session:
        return _walk(session, node, up=True)


def downstream(platform: Platform, node: str) -> list[str]:
    """Every node derived from ``node``, transitively (sorted)."""
    check_node(node)
    with platform.read_session() as session:
        return _walk(session, node, up=False)


def edges_of(platform: Platform, node: str) -> list[Edge]:
    """The direct edges into and out of ``node``."""
    check_node(node)
    with platform.read_session() as session:
        rows = session.execute(
            select(LineageEdgeRow).where(
                (LineageEdgeRow.src == node) | (LineageEdgeRow.dst == node)
            )
        ).scalars()
        return sorted(Edge(r.src, r.dst, r.relation) for r in rows)


def deployments_using(platform: Platform, node: str) -> list[str]:
    """Which deployments (and through them, models) were fed by ``node``, e.g. a dataset version."""
    return [n for n in downstream(platform, node) if n.startswith("deployment:")]


def models_using(platform: Platform, node: str) -> list[str]:
    """Model versions derived from ``node``."""
    return [n for n in downstream(platform, node) if n.startswith("model:")]
