"""What every Ghaf pod shares: labels, a non-root read-only container, its volumes and probes."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version as package_version
from typing import Any

from ghaf.settings import KubernetesSettings

Manifest = dict[str, Any]
"""One Kubernetes object as plain data (``yaml.safe_dump`` writes it)."""

UID = 10001
"""The ``ghaf`` account the images create (deploy/docker): every container runs as it."""
HOME = "/var/lib/ghaf"
"""The platform home inside the images: a declared volume, like ``/tmp``."""
TLS_DIR = "/etc/ghaf/tls"
PART_OF = {"app.kubernetes.io/part-of": "ghaf"}
CONTROL_PLANE = {"ghaf.dev/tier": "control-plane"}
"""The label the default-deny NetworkPolicy selects (predictors are KServe's to wire)."""


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container (memory limit = request: no overcommit)."""

    cpu: str
    memory: str
    cpu_limit: str
    gpus: int = 0

    def to_manifest(self) -> Manifest:
        limits: dict[str, str] = {"cpu": self.cpu_limit, "memory": self.memory}
        if self.gpus:
            limits["nvidia.com/gpu"] = str(self.gpus)
        return {"requests": {"cpu": self.cpu, "memory": self.memory}, "limits": limits}


def ghaf_version() -> str:
    return package_version("ghaf")


def image(given: str | None, name: str) -> str:
    """The image a setting names, or ``NAME:<this Ghaf's version>`` (never ``latest``)."""
    return given or f"{name}:{ghaf_version()}"


def labels(component: str, **extra: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "ghaf",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/version": ghaf_version(),
        **PART_OF,
        **extra,
    }


def metadata(name: str, settings: KubernetesSettings, labels_: dict[str, str]) -> Manifest:
    return {"name": name, "namespace": settings.namespace, "labels": labels_}


def pod_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> Manifest:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities."""
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def probe(path: str, port: int | str, *, scheme: str, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": port, "scheme": scheme},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def volumes(settings: KubernetesSettings, *, tls: bool) -> list[Manifest]:
    """The home (an existing claim), a private /tmp, and the TLS secret when served over TLS."""
    found: list[Manifest] = [
        {"name": "home", "persistentVolumeClaim": {"claimName": settings.home_claim}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}},
    ]
    if tls:
        found.append(
            {"name": "tls", "secret": {"secretName": settings.tls_secret, "defaultMode": 0o440}}
        )
    return found


def mounts(*, tls: bool) -> list[Manifest]:
    found: list[Manifest] = [
        {"name": "home", "mountPath": HOME},
        # The pod's own emptyDir, not a shared /tmp.
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108  # nosec B108
    ]
    if tls:
        found.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
    return found


def environment(*, tls: bool) -> list[Manifest]:
    """GHAF_* every pod sets itself; the rest comes from the existing env secret."""
    env = [
        {"name": "GHAF_HOME", "value": HOME},
        {"name": "GHAF_LOG_FORMAT", "value": "json"},
    ]
    if tls:
        env += [
            {"name": "GHAF_TLS__CERT_FILE", "value": f"{TLS_DIR}/tls.crt"},
            {"name": "GHAF_TLS__KEY_FILE", "value": f"{TLS_DIR}/tls.key"},
        ]
    else:  # Knative's queue-proxy speaks plain HTTP to the container on the pod's loopback
        env.append({"name": "GHAF_TLS__ALLOW_PLAIN_HTTP", "value": "true"})
    return env


def env_from(settings: KubernetesSettings) -> list[Manifest]:
    return [{"secretRef": {"name": settings.env_secret}}]
