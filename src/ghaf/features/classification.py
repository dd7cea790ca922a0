"""How a feature view is classified, so that a read of it is authorized (and audited) as such.

A view is sensitive when its own ``classification`` or a tag value says ``pii`` or
``sensitive``, or when a dataset upstream of it in the lineage graph has a column so
tagged (a feature computed from pii is pii). Views read from a bare Parquet path have
no lineage: only their own classification counts.
"""

from __future__ import annotations

from ghaf.data.residency import object_tags
from ghaf.features.definitions import FeatureView
from ghaf.features.registry import definition_project
from ghaf.platform import Platform
from ghaf.security.rbac import read_action


def view_tags(platform: Platform, view: FeatureView, version: int) -> set[str]:
    """The classification tags of ``view`` (version ``version``) and of its upstream data."""
    tags = set(view.tags.values())
    if view.classification:
        tags.add(view.classification)
    tags |= set(object_tags(platform, f"feature_view:{view.name}:{version}"))
    return tags


def view_read_action(platform: Platform, view: FeatureView, version: int) -> str:
    """``features.read_pii`` for a sensitive view, else ``features.read``."""
    return read_action("features", view_tags(platform, view, version))


def view_project(platform: Platform, view: FeatureView) -> str:
    """The project ``view`` belongs to: the one its definition was first applied in.

    Raises:
        NotFoundError: no such view is defined.
    """
    return definition_project(platform, "feature_view", view.name)
