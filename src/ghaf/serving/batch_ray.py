"""Batch scoring on Ray Data (``ghaf predict ... --on ray``): read and score on every node.

The driver splits the Parquet input into ranges of row groups, one Ray Data row each;
a pool of scoring actors (one CPU each, as many as the cluster has CPUs unless
``workers`` says) reads its ranges straight from the file, scores them and returns only
the kept columns and the scores, in input order. The driver writes what comes back with
the local path's writer (:func:`ghaf.serving.batch.score_file`), so the file or dataset
version, its tags and its lineage are exactly the local path's.

Each actor verifies the model itself before it loads it, as the local path does
(:func:`ghaf.serving.models.verified_runtime`): the driver sends the model directory's
bytes and its trust store's public keys, never a loaded model, and an actor loads only
the files the trusted signature lists.

The input must be readable at the same path on every node (one machine, or a shared
filesystem): nodes read it where it is rather than through the driver.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from ghaf.errors import BackendUnavailableError, GhafError, InvalidInputError, NotFoundError
from ghaf.serving.base import ModelSpec
from ghaf.settings import GhafSettings

RANGE_ROWS = 262_144
"""Most rows per work unit (whole row groups): few enough units that a unit's overhead is
noise. A unit is also at most a ``1 / (actors x UNITS_PER_ACTOR)`` share of the rows left
after it, so units shrink to a row group each towards the end of the file and the nodes
finish together (with equal units, one node idled while another scored the last one)."""
UNITS_PER_ACTOR = 4
ACTOR_START_S = 300
"""How long the actors' processes may take to start before the run fails."""
NODE_KEY = b"ghaf.ray_node"
"""Schema metadata an actor's output carries (the node that scored it); the driver
removes it before writing, so the output is the local path's byte for byte in schema."""


def ray_target(on: str | None, settings: GhafSettings) -> tuple[bool, str | None]:
    """Where ``on`` scores (:func:`ghaf.pipelines.ray_target.ray_target`, read as every
    ``--on`` is)."""
    from ghaf.pipelines.ray_target import ray_target as where

    return where(on, settings.ray_address)


@dataclass(frozen=True)
class ModelBundle:
    """What an actor needs to verify and load the model: its files and the trusted keys."""

    spec: ModelSpec
    files: Mapping[str, bytes]
    trusted: Mapping[str, bytes]

    @classmethod
    def of(cls, spec: ModelSpec, settings: GhafSettings) -> ModelBundle:
        from ghaf.security.homekeys import trusted_keys

        root = spec.path
        files = {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }
        trusted = {p.name: p.read_bytes() for p in trusted_keys(settings)}
        return cls(spec, files, trusted)

    def unpack(self, directory: Path) -> tuple[GhafSettings, ModelSpec]:
        """Write the files and keys under ``directory``: a home whose trust store holds the
        driver's trusted keys, and the model directory the spec now points at."""
        from ghaf.security.homekeys import trust_dir
        from ghaf.settings import load_settings

        settings = load_settings(home=directory / "home")
        keys = trust_dir(settings)
        keys.mkdir(parents=True, mode=0o700)
        for name, pem in self.trusted.items():
            (keys / Path(name).name).write_bytes(pem)
        model = directory / "model"
        for name, body in self.files.items():
            target = (model / name).resolve()
            if not target.is_relative_to(model.resolve()):
                continue  # a name that leaves the directory: not written, so it fails to verify
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        return settings, replace(self.spec, path=model)


class ScoreActor:
    """A Ray Data actor: verifies and loads the model with its first range, then reads and
    scores ranges.

    The constructor keeps only what it was sent, so the pool counts an actor as started
    once its process is up, and each actor verifies and loads the model at its first range
    instead of the whole pool waiting for the slowest to load before the first range goes
    out (on two nodes that barrier idled the node that loaded first for a second or two).
    """

    def __init__(self, bundle: ModelBundle, source: str, keep: Sequence[str] | None) -> None:
        self.bundle = bundle
        self.source = source
        self.keep = keep
        self.runtime: Any = None
        self.refused: GhafError | None = None

    def _load(self) -> Any:
        """The verified runtime, loaded once; a refusal is raised again at every range."""
        if self.refused is not None:
            raise self.refused  # nothing was loaded: the model did not verify here
        if self.runtime is None:
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

            from ghaf.serving.models import verified_runtime

            threadpool_limits(limits=1)  # what is loaded already (numpy's BLAS)
            directory = Path(tempfile.mkdtemp(prefix="ghaf-score-"))
            try:
                settings, spec = self.bundle.unpack(directory)
                self.runtime = verified_runtime(settings, spec, threads=1)
            except GhafError as exc:
                self.refused = exc
                raise
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            # Again after the load, for the math libraries it brought (scikit-learn's
            # OpenMP): one CPU per actor, the cores go to actors.
            threadpool_limits(limits=1)
        return self.runtime

    def __call__(self, ranges: pa.Table) -> Iterator[pa.Table]:
        import pyarrow.parquet as pq
        from ray import get_runtime_context

        from ghaf.serving.batch import score_batch

        runtime = self._load()
        try:
            handle = pq.ParquetFile(self.source, pre_buffer=False)
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"a Ray node cannot read the input {self.source}",
                hint="put the input where every node reads it at the same path",
            ) from exc
        features = set(runtime.signature.columns)
        node = {NODE_KEY: get_runtime_context().get_node_id().encode()}
        for unit in ranges.to_pylist():
            groups = list(range(unit["first"], unit["last"]))
            for batch in handle.iter_batches(batch_size=unit["rows"], row_groups=groups):
                kept = (
                    self.keep
                    if self.keep is not None
                    else [n for n in batch.schema.names if n not in features]
                )
                scored = score_batch(runtime, batch, kept)
                yield pa.Table.from_batches([scored]).replace_schema_metadata(node)


def _ranges(metadata: Any, batch_rows: int, actors: int) -> list[dict[str, int]]:
    """Ranges of whole row groups in input order, each of at most about ``RANGE_ROWS`` rows
    and of a ``1 / (actors x UNITS_PER_ACTOR)`` share of the rows not yet in a range, so
    that the last ranges are one row group each."""
    ranges: list[dict[str, int]] = []
    first = rows = 0
    left = metadata.num_rows
    for group in range(metadata.num_row_groups):
        rows += metadata.row_group(group).num_rows
        target = min(RANGE_ROWS, -(-left // (actors * UNITS_PER_ACTOR)))
        if rows >= target or group == metadata.num_row_groups - 1:
            ranges.append({"first": first, "last": group + 1, "rows": batch_rows})
            first, left, rows = group + 1, left - rows, 0
    return ranges


class RayScorer:
    """A :class:`~ghaf.serving.batch.Scorer` that scores on the Ray cluster at ``address``."""

    def __init__(
        self,
        spec: ModelSpec,
        settings: GhafSettings,
        address: str | None,
        *,
        workers: int | None = None,
        keep: Sequence[str] | None = None,
    ) -> None:
        self.bundle = ModelBundle.of(spec, settings)
        self.address = address
        self.workers = workers
        self.keep = keep
        self.nodes: set[str] = set()
        """The Ray nodes that scored the last input (filled as its scores come back)."""

    def __call__(self, source: Path, batch_rows: int) -> tuple[Iterator[pa.RecordBatch], int]:
        if source.suffix.lower() not in (".parquet", ".pq"):
            raise InvalidInputError(
                f"--on ray scores Parquet inputs; {source.name} is not one",
                hint="convert it to Parquet, or score it locally (--on local)",
            )
        if not source.is_file():
            raise NotFoundError(f"input file {source} does not exist", hint="check the path")
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(source).metadata
        return self._scored(source.resolve(), metadata, batch_rows), metadata.num_rows

    def _scored(self, source: Path, metadata: Any, batch_rows: int) -> Iterator[pa.RecordBatch]:
        from ghaf.pipelines.ray import connect_ray

        started = "ray" in sys.modules and sys.modules["ray"].is_initialized()
        ray = connect_ray(self.address)
        try:
            yield from self._run(ray, source, metadata, batch_rows)
        except ray.exceptions.GetTimeoutError as exc:
            raise BackendUnavailableError(
                f"the Ray cluster at {self.address or 'a new local node'} did not start the "
                f"scoring actors in {ACTOR_START_S} s",
                hint="free CPUs on the cluster, or ask for fewer with --workers",
            ) from exc
        except Exception as exc:
            cause = _ghaf_cause(exc)
            if cause is not None:
                raise cause from exc
            raise
        finally:
            if not started:
                ray.shutdown()

    def _run(
        self, ray: Any, source: Path, metadata: Any, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        from ray.data import ActorPoolStrategy, DataContext

        cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        workers = min(self.workers or cpus, cpus)
        ranges = _ranges(metadata, batch_rows, workers)
        self.nodes = set()
        if not ranges:
            return  # no rows: the writer refuses the empty input, as locally
        # Ray Data's usage collector would report this run and query a Prometheus it
        # assumes on localhost:9090; neither is Ghaf's to do.
        os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
        with warnings.catch_warnings():  # Ray 2.60 warns of its own deprecated default
            warnings.simplefilter("ignore", DeprecationWarning)
            context = DataContext.get_current()
        options = context.execution_options
        saved = (
            options.preserve_order,
            context.enable_progress_bars,
            context.wait_for_min_actors_s,
        )
        options.preserve_order = True  # scores come back in input order
        context.enable_progress_bars = False  # the driver shows its own
        # Every actor's process up before the first range goes out, so every actor gets
        # ranges from the start; each then verifies and loads the model with its first.
        context.wait_for_min_actors_s = ACTOR_START_S
        try:
            scored = ray.data.from_items(ranges, override_num_blocks=len(ranges)).map_batches(
                ScoreActor,
                batch_size=1,
                batch_format="pyarrow",
                fn_constructor_kwargs={
                    "bundle": self.bundle,
                    "source": str(source),
                    "keep": self.keep,
                },
                compute=ActorPoolStrategy(size=min(workers, len(ranges))),
                num_cpus=1,
            )
            for table in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
                self.nodes.add((table.schema.metadata or {}).get(NODE_KEY, b"").decode())
                yield from table.replace_schema_metadata(None).to_batches()
        finally:
            options.preserve_order, context.enable_progress_bars = saved[:2]
            context.wait_for_min_actors_s = saved[2]


def _ghaf_cause(exc: BaseException) -> GhafError | None:
    """The Ghaf error an actor raised, from inside Ray's wrappers (``cause``, ``__cause__``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        nested = getattr(current, "cause", None)  # a RayTaskError is also its cause's type
        if isinstance(nested, BaseException):
            current = nested
            continue
        if isinstance(current, GhafError):
            return current
        current = current.__cause__ or current.__context__
    return None
