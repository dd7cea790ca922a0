"""The control plane's manifests: migration Job, Deployment, Service, HPA, PDB, policies,
Ingress."""

from __future__ import annotations

import re

from ghaf.k8s.pods import (
    CONTROL_PLANE,
    Manifest,
    Resources,
    container_security,
    env_from,
    environment,
    ghaf_version,
    image,
    labels,
    metadata,
    mounts,
    pod_security,
    probe,
    volumes,
)
from ghaf.settings import KubernetesSettings

SERVER = "ghaf-server"
SERVER_PORT = 8700
SERVER_RESOURCES = Resources(cpu="500m", memory="1Gi", cpu_limit="2")
SERVER_WORKERS = 2


def _selector() -> dict[str, str]:
    return {"app.kubernetes.io/name": "ghaf", "app.kubernetes.io/component": "server"}


def _container(settings: KubernetesSettings, name: str, args: list[str]) -> Manifest:
    return {
        "name": name,
        "image": image(settings.server_image, "ghaf-server"),
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "envFrom": env_from(settings),
        "env": environment(tls=True),
        "resources": SERVER_RESOURCES.to_manifest(),
        "securityContext": container_security(),
        "volumeMounts": mounts(tls=True),
    }


def _pod(settings: KubernetesSettings, container: Manifest, **spec: object) -> Manifest:
    return {
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": volumes(settings, tls=True),
        **spec,
    }


def migration_job(settings: KubernetesSettings) -> Manifest:
    """``ghaf init``: migrates the metadata store and fixes the home's owner (safe to re-run).

    Named after the version, so each release runs its own migration (a Job is immutable).
    """
    container = _container(settings, "migrate", ["init"])  # takes no traffic: no probes
    slug = re.sub(r"[^a-z0-9-]", "-", ghaf_version().lower())
    job_labels = labels("migration", **CONTROL_PLANE)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(f"ghaf-migrate-{slug}", settings, job_labels),
        "spec": {
            "backoffLimit": 3,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": _pod(settings, container, restartPolicy="Never"),
            },
        },
    }


def deployment(settings: KubernetesSettings) -> Manifest:
    # Every interface of the pod (its own network namespace); the NetworkPolicies guard it.
    address = "0.0.0.0"  # noqa: S104  # nosec B104
    args = ["server", "--host", address, "--port", str(SERVER_PORT)]
    container = _container(settings, "server", [*args, "--workers", str(SERVER_WORKERS)])
    container["ports"] = [{"name": "https", "containerPort": SERVER_PORT, "protocol": "TCP"}]
    container["startupProbe"] = probe("/health", "https", scheme="HTTPS", period=5, failures=60)
    container["livenessProbe"] = probe("/health", "https", scheme="HTTPS", period=10, failures=3)
    container["readinessProbe"] = probe(
        "/health/ready", "https", scheme="HTTPS", period=5, failures=2
    )
    pod_labels = labels("server", **CONTROL_PLANE)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(SERVER, settings, pod_labels),
        "spec": {
            "replicas": settings.server_min_replicas,
            "selector": {"matchLabels": _selector()},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": _pod(settings, container, terminationGracePeriodSeconds=30),
            },
        },
    }


def service(settings: KubernetesSettings) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(SERVER, settings, labels("server")),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(),
            "ports": [
                {"name": "https", "port": SERVER_PORT, "targetPort": "https", "protocol": "TCP"}
            ],
        },
    }


def autoscaler(settings: KubernetesSettings) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(SERVER, settings, labels("server")),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": SERVER},
            "minReplicas": settings.server_min_replicas,
            "maxReplicas": settings.server_max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": settings.server_cpu_percent,
                        },
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def disruption_budget(settings: KubernetesSettings) -> Manifest:
    """At most one server pod down for a voluntary disruption (a drain never blocks forever)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(SERVER, settings, labels("server")),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector()}},
    }


def network_policies(settings: KubernetesSettings) -> list[Manifest]:
    """Deny every ingress to the control plane's pods, then open the server's port only to
    this namespace, the ingress controller and Prometheus."""
    deny: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata("ghaf-default-deny-ingress", settings, labels("network")),
        "spec": {"podSelector": {"matchLabels": dict(CONTROL_PLANE)}, "policyTypes": ["Ingress"]},
    }
    namespaces = sorted({settings.ingress_namespace, settings.prometheus_namespace})
    peers: list[Manifest] = [{"podSelector": {}}] + [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}
        for name in namespaces
    ]
    allow: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(SERVER, settings, labels("network")),
        "spec": {
            "podSelector": {"matchLabels": _selector()},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": SERVER_PORT}]}],
        },
    }
    return [deny, allow]


def ingress(settings: KubernetesSettings) -> Manifest:
    rule: Manifest = {
        "http": {
            "paths": [
                {
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": SERVER, "port": {"name": "https"}}},
                }
            ]
        }
    }
    spec: Manifest = {"ingressClassName": settings.ingress_class, "rules": [rule]}
    if settings.host:
        rule["host"] = settings.host
        spec["tls"] = [{"hosts": [settings.host], "secretName": settings.tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            **metadata(SERVER, settings, labels("server")),
            "annotations": {
                # the server speaks TLS itself; artifacts stream through, up to its own limit
                "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
                "nginx.ingress.kubernetes.io/proxy-body-size": "0",
                "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
            },
        },
        "spec": spec,
    }


def control_plane(settings: KubernetesSettings) -> list[Manifest]:
    """Every control-plane object, in the order to apply them (the migration Job first)."""
    return [
        migration_job(settings),
        deployment(settings),
        service(settings),
        autoscaler(settings),
        disruption_budget(settings),
        *network_policies(settings),
        ingress(settings),
    ]
