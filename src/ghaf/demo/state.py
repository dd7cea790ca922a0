"""The demo's data path as types: each stage's result, and the state that carries them.

Each stage takes the results it needs from :class:`DemoState` and adds its own, so the
path can be read off the fields: generated data -> stored raw files -> ingested dataset
versions -> feature views over those versions and a point-in-time training set -> the
champion trained on that training set -> a real ``ghaf serve`` with online features ->
replayed traffic in its prediction log -> monitoring of what was served. A stage added
to the live loop (scheduled monitors, incidents, a canary) adds its field here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ghaf.data import DatasetVersion
    from ghaf.demo.bank_data import BankData
    from ghaf.demo.stage_loop import ClosedLoop
    from ghaf.monitoring import DriftReport
    from ghaf.registry import ModelVersion


@dataclass(frozen=True)
class Generated:
    """The scenario's tables (with the true fraud probabilities) and their raw files."""

    data: BankData
    paths: dict[str, Path]

    @property
    def summary(self) -> str:
        data = self.data
        fraud = float(data.transactions["is_fraud"].to_numpy(zero_copy_only=False).mean())
        return (
            f"{data.customers.num_rows:,} customers, {data.transactions.num_rows:,} "
            f"transactions ({fraud:.1%} fraud), {data.drift_transactions.num_rows:,} in "
            "the drift period"
        )


@dataclass(frozen=True)
class StoredFiles:
    """The raw files as content-addressed artifacts: name -> digest."""

    digests: dict[str, str]
    size: int

    @property
    def summary(self) -> str:
        return f"{len(self.digests)} files, {self.size / 1e6:.1f} MB stored content-addressed"


@dataclass(frozen=True)
class Datasets:
    """The ingested dataset versions; the drift period's contract warnings."""

    customers: DatasetVersion
    transactions: DatasetVersion
    drift: DatasetVersion
    drift_warnings: tuple[str, ...]

    @property
    def summary(self) -> str:
        return (
            f"{self.customers.ref} {self.transactions.ref} passed; {self.drift.ref}: "
            f"{len(self.drift_warnings)} warnings ({', '.join(self.drift_warnings) or 'none'})"
        )


@dataclass(frozen=True)
class FeatureSet:
    """Feature views over the dataset versions, the training set joined from them, and
    the online store materialized up to ``online_until``."""

    service: str
    entity_key: str
    request_fields: tuple[str, ...]
    features: tuple[str, ...]
    views: tuple[str, ...]
    """Lineage nodes of the views (``feature_view:NAME:V``)."""
    training_set: DatasetVersion
    training_from: datetime
    online_until: datetime
    materialized: int

    @property
    def summary(self) -> str:
        return (
            f"{', '.join(self.views)} over the dataset versions; training set "
            f"{self.training_set.ref} ({self.training_set.num_rows:,} rows from "
            f"{self.training_from:%Y-%m-%d}, "
            f"{len(self.request_fields)} request fields + {len(self.features)} features, "
            f"point in time); {self.materialized:,} entity rows materialized online until "
            f"{self.online_until:%Y-%m-%d %H:%M}"
        )


@dataclass(frozen=True)
class Champion:
    """The model trained on the training set by the training pipeline, approved by a
    second person and made ``@champion``; its held-out AUC beside the oracle's."""

    version: ModelVersion
    pipeline_run: str
    train_run: str
    features: tuple[str, ...]
    auc: float
    oracle_auc: float
    valid_rows: int
    parity: dict[str, float]
    card: Path

    @property
    def summary(self) -> str:
        parity = ", ".join(f"{k}={v:.3f}" for k, v in sorted(self.parity.items()))
        approvers = ", ".join(
            a.approver + (" (flagged: token minted by the author)" if a.flags else "")
            for a in self.version.approval_records
        )
        return (
            f"pipeline run {self.pipeline_run[:8]}: join -> train -> evaluate -> gate -> "
            f"register on {self.training_set_ref}; AUC {self.auc:.3f} vs oracle "
            f"{self.oracle_auc:.3f} on {self.valid_rows:,} held-out rows; parity diff "
            f"{parity}; {self.version.ref} {'signed' if self.version.signed else 'unsigned'}, "
            f"approved by {approvers}, {self.version.stage}, @champion; card {self.card.name}"
        )

    @property
    def training_set_ref(self) -> str:
        found = [n for n in self.version.lineage if n.startswith("dataset:")]
        return found[0].removeprefix("dataset:") if found else "?"


@dataclass(frozen=True)
class Served:
    """The champion behind a real ``ghaf serve`` process that looks features up online."""

    url: str
    model: str
    version: str
    deployment: str
    revision: int
    log_dir: Path
    token: str = field(repr=False)
    """The scoring service account's token (short-lived; never printed)."""
    project: str
    entity_key: str
    feature_service: str
    anonymous_status: int
    started_s: float

    @property
    def summary(self) -> str:
        return (
            f"ghaf serve {self.model}@champion (v{self.version}) as deployment "
            f"{self.deployment} r{self.revision} on {self.url}, up in {self.started_s:.1f} s: "
            f"requests carry {self.entity_key} and the transaction, the server looks up "
            f"{self.feature_service} in the online store; only the scorer's token is "
            f"answered (none: {self.anonymous_status})"
        )


@dataclass(frozen=True)
class Replay:
    """Drift-period traffic sent to the served model while the online store is kept
    fresh; the served scores' AUC beside the oracle's on the same transactions."""

    start: datetime
    end: datetime
    sent: int
    ok: int
    seconds: float
    send_seconds: float
    """Of ``seconds``, the time spent sending (the rest: materializing)."""
    refreshes: int
    view: str
    logged: int
    logged_from_ms: float
    """Wall-clock time (epoch ms) the replay began: its window of the prediction log."""
    auc: float
    oracle_auc: float

    @property
    def summary(self) -> str:
        return (
            f"{self.sent:,} drift-period transactions ({self.start:%Y-%m-%d %H:%M} to "
            f"{self.end:%Y-%m-%d %H:%M}) sent one per request: {self.ok:,} answered "
            f"({self.ok / max(self.send_seconds, 1e-9):.0f}/s while sending); {self.view} "
            f"materialized {self.refreshes} times as replayed time passed; "
            f"{self.logged:,} predictions in the log; served AUC {self.auc:.3f} vs oracle "
            f"{self.oracle_auc:.3f}"
        )


@dataclass(frozen=True)
class ServedDrift:
    """What was served (the prediction log) against the champion's training profile."""

    model: str
    version: str
    rows: int
    reference: str
    report: DriftReport
    html: Path

    @property
    def summary(self) -> str:
        drifted = self.report.drifted_columns
        total = len(self.report.columns)
        return (
            f"{self.rows:,} served predictions of {self.model}:{self.version} vs "
            f"{self.reference}: {len(drifted)}/{total} features drifted "
            f"({', '.join(drifted) or 'none'}); report {self.html.name}"
        )


@dataclass(frozen=True)
class DemoState:
    """Every stage's result so far (None until its stage ran)."""

    project: str | None = None
    generated: Generated | None = None
    stored: StoredFiles | None = None
    datasets: Datasets | None = None
    features: FeatureSet | None = None
    champion: Champion | None = None
    served: Served | None = None
    replay: Replay | None = None
    served_drift: ServedDrift | None = None
    closed_loop: ClosedLoop | None = None
