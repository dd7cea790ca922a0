"""The feature store: definitions, point-in-time training sets, online features."""

from ghaf.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    Transform,
)

__all__ = [
    "Entity",
    "FeatureService",
    "FeatureView",
    "Field",
    "OnDemandFeatureView",
    "Transform",
]
