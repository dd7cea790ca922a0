"""Serving: real-time inference (OIP v2, adaptive batching) and batch scoring."""

from ghaf.serving.base import ModelSpec, Runtime, Signature, TensorSpec
from ghaf.serving.server import ServeConfig, background_server, build_app

__all__ = [
    "ModelSpec",
    "Runtime",
    "ServeConfig",
    "Signature",
    "TensorSpec",
    "background_server",
    "build_app",
]
