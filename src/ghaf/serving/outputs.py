"""Where batch scores go: their tags and region checked before the first byte, audited.

Scores carry the tags of what was scored (a dataset's, or a file's: the dataset whose
bytes it holds, tags Ghaf wrote into it, ``--classification``) and of the model (what
it was trained on), pii columns carried through included.

- ``dataset:NAME``: stored in the artifact store, whose region is asked of the store;
  a governed ``dataset.write`` whose lineage is the model and the input dataset, and
  whose carried columns keep their classification.
- a file: a governed ``prediction.export``. Its region is the one ``region`` declares
  (``ghaf predict --region``); without one, when the artifact store is a local
  directory, the home's ``artifact_region`` (the file is written on the same machine);
  otherwise it has no known region, and tagged scores are refused until one is given.
  A Parquet file gets the tags in its metadata, so reading it back keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from ghaf.access.authorize import authorize_read
from ghaf.access.residency import check_residency
from ghaf.data import dataset_parquet_path, get_dataset, write_dataset
from ghaf.data.residency import Tags, file_tags, merge_tags, tags_metadata
from ghaf.data.store import check_version_residency, staging_dir
from ghaf.errors import IntegrityError, InvalidInputError, NotFoundError
from ghaf.features.residency import lineage_tags, strongest_classification
from ghaf.platform import Platform
from ghaf.scheduling.quotas import check_quota
from ghaf.security.identity import Actor
from ghaf.security.rbac import read_action
from ghaf.security.residency import check_region
from ghaf.serving.base import ModelSpec, Runtime
from ghaf.serving.batch import Scorer, ScoreStats, read_batches, score_file
from ghaf.serving.metering import BatchMeter
from ghaf.spine import current_operation, governed


@dataclass(frozen=True)
class ScoringInput:
    """What is scored: a local Parquet/CSV file, its tags, lineage and column tags."""

    path: Path
    tags: Tags
    nodes: tuple[str, ...] = ()
    column_tags: Mapping[str, str] | None = None


def resolve_input(
    platform: Platform, actor: Actor, source: Path | str, classification: Sequence[str] = ()
) -> ScoringInput:
    """The input ``source`` names (a file, or ``dataset:NAME[:V]``) with its tags.

    A dataset input is a read of it: ``dataset.read_pii`` when it is sensitive (audited).

    Raises:
        NotFoundError: no such file or dataset.
        PermissionDeniedError: the actor may not read the dataset.
    """
    declared: Tags = {tag: ["declared by --classification"] for tag in classification}
    if isinstance(source, str) and source.startswith("dataset:"):
        version = get_dataset(platform, source.removeprefix("dataset:"))
        tags = lineage_tags(platform, version.node)
        action = read_action("dataset", tags)
        authorize_read(platform, actor, action, version.node, audit_allowed=action.endswith("_pii"))
        path = dataset_parquet_path(platform, version.ref)
        return ScoringInput(
            path, merge_tags(tags, declared), (version.node,), dict(version.column_tags)
        )
    path = Path(source)
    if not path.is_file():
        raise NotFoundError(f"input file {path} does not exist", hint="check the path")
    return ScoringInput(path, merge_tags(file_tags(platform, path), declared))


def file_region(platform: Platform, region: str | None) -> str | None:
    """Where a file output lives: ``region`` if given, else the home's artifact region
    when the artifact store is a local directory (same machine), else unknown."""
    if region is not None:
        return check_region(region)
    if platform.settings.resolved_artifact_url.startswith("file:"):
        return platform.settings.artifact_region
    return None


def score_to_target(
    platform: Platform,
    actor: Actor,
    spec: ModelSpec,
    source: Path | str,
    output: str,
    *,
    classification: Sequence[str] = (),
    region: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    on: str | None = None,
) -> ScoreStats:
    """Verify and load ``spec``, then score ``source`` into a file or ``dataset:NAME``.

    Args:
        source: a Parquet/CSV file or ``dataset:NAME[:V]``.
        classification: tags of a file input that Ghaf cannot know (``pii``...).
        region: where a file output will be stored (see the module docstring).
        on: where to score: ``local`` (default: threads here), ``ray`` (the cluster at
            ``ray_address``) or ``ray://HOST:PORT`` (:mod:`ghaf.serving.batch_ray`).

    Raises:
        IntegrityError: the model's files do not verify (nothing is written).
        PolicyViolationError: the scores' tags may not go to the output's region
            (nothing is written; audited).
        InvalidInputError: tagged scores for a file of no known region.
    """
    from ghaf.serving.models import load_served

    on_ray, address = False, None
    if on is not None:
        from ghaf.serving.batch_ray import ray_target

        on_ray, address = ray_target(on, platform.settings)  # a bad --on fails first
    # A batch job holds its scoring threads' CPUs: refused at once when the project is
    # over its CPU-hours quota, before the model loads.
    check_quota(platform, platform.default_project, cpus=float(workers or 1), gpus=0.0)
    served = load_served(spec, platform=platform)
    if served.runtime is None:
        raise IntegrityError(
            f"model {spec.name} version {spec.version} was refused: {served.error}",
            hint="score only models signed by a trusted key: register it, then use NAME:VERSION",
        )
    scorer: Scorer | None = None
    if on_ray:
        from ghaf.serving.batch_ray import RayScorer

        scorer = RayScorer(spec, platform.settings, address, workers=workers)
    scoring = resolve_input(platform, actor, source, classification)
    model = f"model:{spec.name}:{spec.version}"
    tags = merge_tags(scoring.tags, lineage_tags(platform, model))
    with BatchMeter(platform, actor, spec.name, workers) as meter:
        if output.startswith("dataset:"):
            stats = _score_into_dataset(
                platform,
                actor,
                served.runtime,
                scoring,
                tags,
                model,
                output,
                workers,
                progress,
                scorer,
            )
        else:
            stats = export_predictions(
                platform,
                actor,
                str(Path(output).resolve()),
                runtime=served.runtime,
                source=scoring.path,
                tags=tags,
                model=model,
                region=region,
                workers=workers,
                progress=progress,
                scorer=scorer,
            )
        meter.predictions = stats.rows
    return stats


def _score_into_dataset(
    platform: Platform,
    actor: Actor,
    runtime: Runtime,
    scoring: ScoringInput,
    tags: Tags,
    model: str,
    output: str,
    workers: int | None,
    progress: bool,
    scorer: Scorer | None = None,
) -> ScoreStats:
    name = output.removeprefix("dataset:")
    inputs = [model, *scoring.nodes]
    # Before scoring: a refused output leaves no staged file and no blob.
    check_version_residency(platform, actor, name, inputs=inputs, own_tags=tags)
    with staging_dir(platform) as directory:
        staged = directory / "scored.parquet"
        stats = score_file(
            runtime, scoring.path, staged, workers=workers, progress=progress, scorer=scorer
        )
        columns = pq.read_schema(staged).names
        scored, _ = read_batches(staged)
        write_dataset(
            platform,
            actor,
            name,
            scored,
            source=f"batch scoring with {model}",
            inputs=inputs,
            column_tags=_output_column_tags(scoring, columns),
            residency=_residency(scoring),
        )
    return stats


def _output_column_tags(scoring: ScoringInput, columns: Sequence[str]) -> dict[str, str]:
    """A dataset input's carried columns keep their tags; a classified file's data is
    classified as a whole, so every output column gets its strongest classification."""
    if scoring.column_tags is not None:
        return {c: t for c, t in scoring.column_tags.items() if c in columns}
    strongest = strongest_classification(scoring.tags)
    return dict.fromkeys(columns, strongest) if strongest else {}


def _residency(scoring: ScoringInput) -> str | None:
    if scoring.nodes:  # a dataset input: its residency flows through lineage
        return None
    regions = sorted(t.removeprefix("resident:") for t in scoring.tags if t.startswith("resident:"))
    return regions[0] if regions else None


@governed("prediction.export", resource="file:{output}")
def export_predictions(
    platform: Platform,
    actor: Actor,
    output: str,
    *,
    runtime: Runtime,
    source: Path,
    tags: Mapping[str, list[str]],
    model: str,
    region: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    scorer: Scorer | None = None,
) -> ScoreStats:
    """Score ``source`` into the file ``output``, its residency checked first.

    Raises:
        PolicyViolationError: the tags may not go to the file's region (audited).
        InvalidInputError: tagged scores, and the file's region is unknown.
    """
    where = file_region(platform, region)
    operation = current_operation()
    operation.details.update(
        model=model, input=str(source), region=where or "unknown", tags=sorted(tags)
    )
    if scorer is not None:
        operation.details["scored_on"] = "ray"
    if where is not None:
        check_residency(platform, tags, where, actor=actor, resource=f"file:{output}")
    elif tags:
        raise InvalidInputError(
            f"output file {output} has no known region, and the scores are tagged "
            f"{', '.join(sorted(tags))}",
            hint="pass --region with the region the file will be stored in",
        )
    stats = score_file(
        runtime,
        source,
        Path(output),
        workers=workers,
        progress=progress,
        metadata=tags_metadata(tags) if tags else None,
        scorer=scorer,
    )
    operation.details["rows"] = stats.rows
    return stats
