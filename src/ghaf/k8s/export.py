"""``ghaf deployments export --k8s``: every manifest, checked, written one file per object."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ghaf.errors import ConfigError, InvalidInputError
from ghaf.k8s.control_plane import control_plane
from ghaf.k8s.kserve import (
    Scale,
    ServedVersion,
    canary_percent,
    inference_service,
    service_monitor,
    service_name,
)
from ghaf.k8s.pods import Manifest
from ghaf.settings import KubernetesSettings


@dataclass(frozen=True)
class Split:
    """A deployment record's versions and traffic weights (one, or a stable and a canary)."""

    name: str
    weights: dict[ServedVersion, float]


def _predictors(
    settings: KubernetesSettings,
    name: str,
    version: ServedVersion,
    scale: Scale,
    gpu: bool,
    canary_of: tuple[ServedVersion, int] | None = None,
) -> list[Manifest]:
    made = [inference_service(settings, version, scale, name=name, gpu=gpu, canary_of=canary_of)]
    if settings.deployment_mode == "RawDeployment":
        made.append(service_monitor(settings, name))
    return made


def _split(settings: KubernetesSettings, split: Split, scale: Scale, gpu: bool) -> list[Manifest]:
    name = service_name(split.name)
    versions = sorted(split.weights, key=lambda v: v.version)
    if len(versions) == 1:
        return _predictors(settings, name, versions[0], scale, gpu)
    if len(versions) > 2:
        raise InvalidInputError(
            f"deployment {split.name} serves {len(versions)} versions; KServe splits traffic "
            "between two revisions only",
            hint="export its versions one by one with --model, or reduce the deployment to a "
            "stable version and a canary",
        )
    if settings.deployment_mode != "Serverless":
        raise InvalidInputError(
            f"deployment {split.name} splits traffic between {versions[0].ref} and "
            f"{versions[1].ref}; KServe's canaryTrafficPercent needs Serverless mode",
            hint="add --mode Serverless, or export one version with --model",
        )
    stable, canary = versions
    weights = {v.ref: w for v, w in split.weights.items()}
    percent = canary_percent(weights, canary.ref)
    return _predictors(settings, name, canary, scale, gpu, canary_of=(stable, percent))


def export_manifests(
    settings: KubernetesSettings,
    *,
    models: Sequence[ServedVersion] = (),
    splits: Sequence[Split] = (),
    gpu: bool = False,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
) -> list[Manifest]:
    """The control plane's objects, then an InferenceService (and, in RawDeployment mode,
    a ServiceMonitor) for each model version and each deployment.

    Raises:
        InvalidInputError: bad replica numbers, a name KServe cannot take, a split that
            KServe cannot express, or two services of one name.
        ConfigError: the settings' control-plane replica bounds are reversed.
    """
    if settings.server_min_replicas > settings.server_max_replicas:
        raise ConfigError(
            f"kubernetes.server_min_replicas {settings.server_min_replicas} is above "
            f"kubernetes.server_max_replicas {settings.server_max_replicas}",
            hint="set GHAF_KUBERNETES__SERVER_MAX_REPLICAS to the minimum or more",
        )
    scale = Scale.from_settings(settings, min_replicas=min_replicas, max_replicas=max_replicas)
    made = control_plane(settings)
    for version in models:
        made += _predictors(settings, service_name(version.name), version, scale, gpu)
    for split in splits:
        made += _split(settings, split, scale, gpu)
    names = [m["metadata"]["name"] for m in made if m["kind"] == "InferenceService"]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInputError(
            f"two InferenceServices would be named {twice[0]}",
            hint="export a model and the deployment that serves it separately",
        )
    return made


def file_name(index: int, manifest: Manifest) -> str:
    return f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"


class _Dumper(yaml.SafeDumper):
    """``safe_dump``'s dumper without anchors: a label map shared by two fields is written
    twice, as a person would (``&id001`` / ``*id001`` is legal YAML but unreadable)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def render(manifest: Manifest) -> str:
    """One object as YAML (plain data only, keys in the order built)."""
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_manifests(manifests: Sequence[Manifest], out: Path) -> list[Path]:
    """Write each object to ``out/NN-KIND-NAME.yaml`` (in apply order), each file atomically.

    Raises:
        InvalidInputError: ``out`` exists and is not a directory, or cannot be written.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidInputError(
            f"--out {out} is not a directory", hint="give a directory (it is created)"
        ) from None
    except OSError as exc:
        raise InvalidInputError(
            f"cannot create --out {out}: {exc.strerror}", hint="give a writable directory"
        ) from exc
    written = []
    for index, manifest in enumerate(manifests, start=1):
        target = out / file_name(index, manifest)
        handle, partial = tempfile.mkstemp(dir=out, prefix=".", suffix=".partial")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(render(manifest))
        Path(partial).replace(target)
        written.append(target)
    return written
