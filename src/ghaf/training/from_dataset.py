"""Train on a dataset version of the home: what ``ghaf train`` calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.training.base import TrainData, TrainResult, TrainSpec
from ghaf.training.trainer import train


def train_on_dataset(
    platform: Platform,
    actor: Actor,
    spec: TrainSpec,
    ref: str,
    target: str,
    *,
    features: Sequence[str] | None = None,
    valid_fraction: float = 0.2,
    ray_address: str | None = None,
) -> TrainResult:
    """Train ``spec`` on dataset version ``ref`` (``name`` or ``name:3``), predicting
    ``target`` from ``features`` (default: every other column), a shuffled
    ``valid_fraction`` held out for the validation metrics.

    The version becomes an input of the run's lineage. A version with pii or sensitive
    columns needs ``dataset.read_pii``, as reading it does (the allowed read is audited).

    Raises:
        NotFoundError: no such dataset version.
        PermissionDeniedError: the actor may not read a sensitive version.
        InvalidInputError: a column is missing, or the spec or data is invalid.
    """
    from ghaf.access.authorize import authorize_read
    from ghaf.data import get_dataset, read_dataset
    from ghaf.data.catalog import project_of
    from ghaf.data.residency import object_tags
    from ghaf.errors import InvalidInputError
    from ghaf.security.rbac import read_action

    if not 0.0 <= valid_fraction < 1.0:
        raise InvalidInputError(
            f"valid_fraction is {valid_fraction}", hint="use a fraction in [0, 1), e.g. 0.2"
        )
    version = get_dataset(platform, ref)
    action = read_action("dataset", object_tags(platform, version.node))
    if action != "dataset.read":
        project = project_of(platform, version)
        authorize_read(platform, actor, action, version.node, project, audit_allowed=True)
    table = read_dataset(platform, version.ref)
    data = TrainData.from_table(
        table, target, features=features, valid_fraction=valid_fraction, seed=spec.seed
    )
    spec = replace(spec, inputs=[*spec.inputs, version.node])
    return train(spec, data, platform=platform, actor=actor, ray_address=ray_address)
