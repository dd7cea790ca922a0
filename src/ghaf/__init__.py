"""Ghaf: a governed MLOps platform."""

from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.settings import GhafSettings, load_settings

__all__ = ["Actor", "GhafSettings", "Platform", "load_settings"]
