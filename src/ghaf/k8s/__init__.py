"""Kubernetes manifests for Ghaf: the control plane and a KServe InferenceService per version.

Built as plain data in code and written with ``yaml.safe_dump``; no secret is ever written:
pods read theirs from existing Secrets named in settings (``GHAF_KUBERNETES__*``).
"""

from ghaf.k8s.export import Split, export_manifests, render, write_manifests
from ghaf.k8s.kserve import Scale, ServedVersion

__all__ = ["Scale", "ServedVersion", "Split", "export_manifests", "render", "write_manifests"]
