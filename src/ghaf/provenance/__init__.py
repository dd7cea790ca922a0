"""Provenance as people see it: lineage filtered by what each reader may read."""

from ghaf.provenance.visibility import (
    LineageReader,
    VisibleGraph,
    dataset_missing,
    node_project,
    visible_graph,
)

__all__ = ["LineageReader", "VisibleGraph", "dataset_missing", "node_project", "visible_graph"]
