"""Lineage: the graph of datasets, transforms, features, runs, models and deployments."""

from ghaf.lineage.graph import deployments_using, downstream, edges_of, link, upstream

__all__ = ["deployments_using", "downstream", "edges_of", "link", "upstream"]
