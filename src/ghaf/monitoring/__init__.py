"""Monitoring: drift and data-quality checks of a current window against a reference, and
scheduled monitors of deployments over the prediction log.

The names are imported lazily (as in ``ghaf/__init__.py``): ``ghaf monitor status`` needs
only the result tables, not the drift engine's statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ghaf.lazy import lazy_getattr

if TYPE_CHECKING:
    from ghaf.monitoring.base import ColumnOverride, DriftOptions, DriftReport
    from ghaf.monitoring.drift import compare_profiles
    from ghaf.monitoring.inputs import profile_window
    from ghaf.monitoring.profile import Profile, build_profile
    from ghaf.monitoring.quality import check_quality

_EXPORTS = {
    "ColumnOverride": "ghaf.monitoring.base",
    "DriftOptions": "ghaf.monitoring.base",
    "DriftReport": "ghaf.monitoring.base",
    "Profile": "ghaf.monitoring.profile",
    "build_profile": "ghaf.monitoring.profile",
    "check_quality": "ghaf.monitoring.quality",
    "compare_profiles": "ghaf.monitoring.drift",
    "profile_window": "ghaf.monitoring.inputs",
}

__all__ = [
    "ColumnOverride",
    "DriftOptions",
    "DriftReport",
    "Profile",
    "build_profile",
    "check_quality",
    "compare_profiles",
    "profile_window",
]

__getattr__ = lazy_getattr(__name__, _EXPORTS)
