"""A KServe InferenceService per model version: ``ghaf serve`` in the inference image."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ghaf.errors import InvalidInputError
from ghaf.k8s.pods import (
    Manifest,
    Resources,
    container_security,
    env_from,
    environment,
    image,
    labels,
    metadata,
    mounts,
    pod_security,
    probe,
    volumes,
)
from ghaf.settings import KubernetesSettings

PORT = 8080
CPU = Resources(cpu="1", memory="2Gi", cpu_limit="2")
GPU = Resources(cpu="2", memory="8Gi", cpu_limit="4", gpus=1)
LOAD_SECONDS = 600
"""How long a predictor may take to download, verify and warm its model before the
kubelet gives up on it: KServe's users saw pods killed while loading (kserve#1247)."""
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,43}[a-z0-9])?")
"""A DNS-1035 label short enough for KServe's ``-predictor-00001-private`` suffixes."""


@dataclass(frozen=True)
class ServedVersion:
    """A registered model version, as the registry describes it (either mode's answer)."""

    name: str
    version: int
    project: str
    flavor: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ServedVersion:
        return cls(
            str(record["name"]),
            int(record["version"]),
            str(record["project"]),
            str(record["flavor"]),
        )


@dataclass(frozen=True)
class Scale:
    """Predictor replicas and what KServe scales them on."""

    min_replicas: int
    max_replicas: int
    metric: str
    target: int

    @classmethod
    def from_settings(
        cls,
        settings: KubernetesSettings,
        *,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
    ) -> Scale:
        """The settings' scale, with the command line's replica numbers over them.

        Raises:
            InvalidInputError: a negative minimum, a maximum under 1 or under the minimum,
                or scale to zero without Serverless mode, naming the option and the fix.
        """
        low = settings.inference_min_replicas if min_replicas is None else min_replicas
        high = settings.inference_max_replicas if max_replicas is None else max_replicas
        if low < 0:
            raise InvalidInputError(
                f"--min-replicas {low} is negative", hint="give 0 (scale to zero) or more"
            )
        if high < 1 or high < low:
            raise InvalidInputError(
                f"--max-replicas {high} is below {max(low, 1)}",
                hint=f"give --max-replicas of at least {max(low, 1)} (its setting: "
                "GHAF_KUBERNETES__INFERENCE_MAX_REPLICAS)",
            )
        if low == 0 and settings.deployment_mode != "Serverless":
            raise InvalidInputError(
                "--min-replicas 0 (scale to zero) needs KServe's Serverless mode",
                hint="add --mode Serverless (Knative's activator holds requests), or give "
                "--min-replicas 1 (settings: GHAF_KUBERNETES__DEPLOYMENT_MODE, "
                "GHAF_KUBERNETES__INFERENCE_MIN_REPLICAS)",
            )
        return cls(low, high, settings.inference_scale_metric, settings.inference_scale_target)


def service_name(given: str) -> str:
    """``given`` as an InferenceService name: lowercase, ``_`` and ``.`` become ``-``.

    Raises:
        InvalidInputError: it still is no DNS-1035 label of at most 45 characters.
    """
    name = re.sub(r"[_.]", "-", given.lower())
    if not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"{given!r} cannot name an InferenceService",
            hint="an InferenceService is named after the model or deployment: a lowercase "
            "letter, then letters, digits or '-' (45 at most)",
        )
    return name


def canary_percent(weights: dict[str, float], canary: str) -> int:
    """The canary's share of the traffic, in whole percent."""
    return round(100 * weights[canary] / sum(weights.values()))


def inference_service(
    settings: KubernetesSettings,
    version: ServedVersion,
    scale: Scale,
    *,
    name: str,
    gpu: bool = False,
    canary_of: tuple[ServedVersion, int] | None = None,
) -> Manifest:
    """The InferenceService that serves ``version``; with ``canary_of`` (the stable version
    and the canary's percent) it is the canary revision of an existing service.

    The predictor is ``ghaf serve`` itself: it downloads the version from the registry,
    verifies its signature and release policy, and reports ready only once loaded, so
    neither KServe nor Knative's activator sends it a request it cannot answer.
    """
    serverless = settings.deployment_mode == "Serverless"
    tls = not serverless
    scheme = "HTTPS" if tls else "HTTP"
    resources = GPU if gpu else CPU
    # Every interface of the pod (its own network namespace): KServe's Service fronts it.
    address = "0.0.0.0"  # noqa: S104  # nosec B104
    args = ["serve", version.ref, "--host", address, "--port", str(PORT)]
    # Each revision records what it serves under its own name, so the canary's pods and
    # the stable ones never rewrite each other's deployment record.
    args += ["--deployment", f"{name}-v{version.version}", "--threads", resources.cpu]
    container: Manifest = {
        "name": "kserve-container",
        "image": image(settings.gpu_image, "ghaf-inference-gpu")
        if gpu
        else image(settings.inference_image, "ghaf-inference"),
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
        "envFrom": env_from(settings),
        "env": environment(tls=tls),
        "resources": resources.to_manifest(),
        "securityContext": container_security(),
        "volumeMounts": mounts(tls=tls),
        "startupProbe": probe(
            "/v2/health/live", PORT, scheme=scheme, period=5, failures=LOAD_SECONDS // 5
        ),
        "livenessProbe": probe("/v2/health/live", PORT, scheme=scheme, period=10, failures=3),
        "readinessProbe": probe("/v2/health/ready", PORT, scheme=scheme, period=5, failures=2),
    }
    predictor: Manifest = {
        "minReplicas": scale.min_replicas,
        "maxReplicas": scale.max_replicas,
        "scaleMetric": scale.metric,
        "scaleTarget": scale.target,
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": volumes(settings, tls=tls),
    }
    model_labels = {"ghaf.dev/model": version.name, "ghaf.dev/version": str(version.version)}
    annotations = {
        "serving.kserve.io/deploymentMode": settings.deployment_mode,
        "ghaf.dev/model-version": version.ref,
        "ghaf.dev/project": version.project,
    }
    if canary_of is not None:
        stable, percent = canary_of
        predictor["canaryTrafficPercent"] = percent
        annotations["ghaf.dev/stable"] = stable.ref
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            **metadata(name, settings, labels("predictor", **model_labels)),
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


def service_monitor(settings: KubernetesSettings, name: str) -> Manifest:
    """Prometheus scrapes the predictors' ``/metrics`` with a token from an existing secret.

    For RawDeployment: KServe's ``NAME-predictor`` Service targets the container's port.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(name, settings, labels("predictor")),
        "spec": {
            "selector": {"matchLabels": {"serving.kserve.io/inferenceservice": name}},
            "namespaceSelector": {"matchNames": [settings.namespace]},
            "endpoints": [
                {
                    "targetPort": PORT,
                    "path": "/metrics",
                    "scheme": "https",
                    "interval": "30s",
                    "authorization": {
                        "type": "Bearer",
                        "credentials": {"name": settings.metrics_secret, "key": "token"},
                    },
                    "tlsConfig": {
                        "ca": {"secret": {"name": settings.tls_secret, "key": "ca.crt"}},
                        "serverName": f"{name}-predictor.{settings.namespace}.svc",
                    },
                }
            ],
        },
    }
