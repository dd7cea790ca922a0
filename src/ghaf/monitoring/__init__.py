"""Monitoring: drift and data-quality checks of a current window against a reference."""

from ghaf.monitoring.base import ColumnOverride, DriftOptions, DriftReport
from ghaf.monitoring.drift import compare_profiles
from ghaf.monitoring.inputs import profile_window
from ghaf.monitoring.profile import Profile, build_profile
from ghaf.monitoring.quality import check_quality

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
