"""What a model version's live windows are compared with: its training profile (the
features) and its scores on that profile's sample (the predictions), each stored once as
a profile and reused by every later run.

A version's training profile is the profile of the dataset version its lineage says it
was trained on (``dataset:NAME:V``), over the version's input columns, saved as
``MODEL-vN-training``; a schedule may pin another (``profile:NAME@V``). Its reference
scores are what the registered version answers on that profile's sample, saved as
``MODEL-vN-scores`` with the feature profile it scored named in its source.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ghaf.errors import GhafError, NotFoundError
from ghaf.monitoring.profile import Profile, build_profile, float_values
from ghaf.monitoring.store import StoredProfile, get_profile, save_profile
from ghaf.platform import Platform
from ghaf.security.identity import Actor

SCORE = "score"
_CACHE_SIZE = 16
_cache: OrderedDict[tuple[str, str], Profile] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class Reference:
    """The reference of one model version: features, scores (sorted; None when the
    version could not be scored) and where each came from."""

    features: Profile | None
    feature_ref: str | None
    scores: np.ndarray | None
    scores_ref: str | None
    note: str = ""


def _load(platform: Platform, stored: StoredProfile) -> Profile:
    """A stored profile, verified once and kept (profiles never change: keyed by digest)."""
    key = (str(platform.settings.home), stored.digest)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    # By digest, not by name: a profile saved in this run's transaction is not visible
    # to another session until it commits.
    profile = Profile.from_bytes(platform.artifacts.read_bytes(stored.digest))
    with _lock:
        _cache[key] = profile
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return profile


def _stored(platform: Platform, name: str) -> StoredProfile | None:
    try:
        return get_profile(platform, name, project=platform.default_project)
    except NotFoundError:
        return None


def training_profile(
    platform: Platform, actor: Actor, model: str, version: str
) -> tuple[StoredProfile | None, str]:
    """The stored training profile of ``model:version``, made on first use from the
    dataset version in its lineage; (None, why) when there is none to make."""
    from ghaf.monitoring.inputs import profile_window
    from ghaf.registry import get_model_version

    name = f"{model}-v{version}-training"
    found = _stored(platform, name)
    if found is not None:
        return found, ""
    try:
        record = get_model_version(platform, f"{model}:{version}")
    except NotFoundError:
        return None, f"{model}:{version} is not in the registry: pin a reference profile"
    datasets = [node for node in record.lineage if node.startswith("dataset:")]
    if not datasets:
        return None, (
            f"{model}:{version} names no training dataset in its lineage: pin a reference "
            "(ghaf monitor schedule ... --reference profile:NAME)"
        )
    ref = datasets[0].removeprefix("dataset:")
    schema = record.input_schema()
    columns = list(schema.names) if schema is not None else None
    try:
        profile = profile_window(ref, platform, columns=columns)
    except GhafError as exc:
        return None, f"the training data {ref} could not be profiled: {exc.headline}"
    stored = save_profile(platform, actor, name, profile, source=f"dataset:{ref}")
    return stored, ""


def reference_scores(
    platform: Platform,
    actor: Actor,
    model: str,
    version: str,
    features: Profile,
    feature_ref: str,
    columns: list[str],
) -> tuple[np.ndarray | None, str | None, str]:
    """The sorted scores ``model:version`` gives the reference sample (computed once and
    stored as ``MODEL-vN-scores``); (None, None, why) when it cannot be scored."""
    name = f"{model}-v{version}-scores"
    source = f"{model}:{version} on {feature_ref}"
    found = _stored(platform, name)
    if found is None or found.source != source:
        try:
            scores = _score_sample(platform, model, version, features, columns)
        except GhafError as exc:
            return None, None, f"reference scores unavailable: {exc.headline}"
        if scores is None:
            return None, None, "reference scores unavailable: the sample lacks a model input"
        table = pa.table({SCORE: pa.array(scores, pa.float64())})
        found = save_profile(platform, actor, name, build_profile(table, seed=0), source=source)
    profile = _load(platform, found)
    values = profile.sorted_values(SCORE)
    return values, f"profile:{found.name}@{found.version}", ""


def _score_sample(
    platform: Platform, model: str, version: str, features: Profile, columns: list[str]
) -> np.ndarray | None:
    """The registered version's scores on ``features``' sample (its input columns in the
    version's order); None when the sample lacks one of them."""
    from ghaf.artifacts.scratch import scratch_dir
    from ghaf.monitoring.scoring import score_vector
    from ghaf.serving.models import resolve_model, verify_files
    from ghaf.serving.runtimes import load_runtime

    sample = features.sample
    if any(name not in sample.column_names for name in columns) or not columns:
        return None
    matrix = np.column_stack(
        [np.concatenate([float_values(c) for c in sample.column(n).chunks]) for n in columns]
    )
    with scratch_dir(platform.settings.home, "monitor-") as workdir:
        spec = resolve_model(platform, f"{model}:{version}", workdir, serving=False)
        runtime = load_runtime(
            spec.flavor,
            spec.path,
            spec.signature,
            allowed_files=verify_files(platform.settings, spec.path),
        )
        outputs = runtime.predict(matrix)
    scored = score_vector(outputs)
    return None if scored is None else scored[0]


def reference_for(
    platform: Platform,
    actor: Actor,
    model: str,
    version: str,
    pinned: str | None,
    columns: list[str],
) -> Reference:
    """The reference of ``model:version``: the pinned profile or its training profile,
    and its reference scores. Never raises for a missing piece: the note says why."""
    if pinned is not None:
        name = pinned.removeprefix("profile:")
        try:
            stored: StoredProfile | None = get_profile(
                platform, name, project=platform.default_project
            )
            why = ""
        except NotFoundError:
            stored, why = None, f"the pinned reference {pinned} is gone: schedule another"
    else:
        stored, why = training_profile(platform, actor, model, version)
    if stored is None:
        return Reference(None, None, None, None, why)
    features = _load(platform, stored)
    feature_ref = f"profile:{stored.name}@{stored.version}"
    scores, scores_ref, note = reference_scores(
        platform, actor, model, version, features, feature_ref, columns
    )
    return Reference(features, feature_ref, scores, scores_ref, note)
