"""Ghaf: a governed MLOps platform."""

from ghaf.models import load_model
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.settings import GhafSettings, load_settings
from ghaf.tracking import start_run

__all__ = ["Actor", "GhafSettings", "Platform", "load_model", "load_settings", "start_run"]
