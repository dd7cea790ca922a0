"""One typed settings object, built once at the entry point and passed down.

Sources, highest priority first: constructor arguments, ``GHAF_*`` environment
variables (nested with ``__``, e.g. ``GHAF_SECURITY__ENCRYPT_ARTIFACTS=false``), then
``ghaf.toml`` in the platform home. Nothing else in Ghaf reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ghaf.errors import ConfigError

SETTINGS_FILE = "ghaf.toml"
_ENV_PREFIX = "GHAF_"
_REGION_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _default_residency() -> dict[str, list[str]]:
    return {"pii": ["ae-*"], "resident:ae": ["ae-*"]}


class SecuritySettings(BaseModel):
    """Encryption, signing and identity options."""

    model_config = ConfigDict(extra="forbid")

    encrypt_artifacts: bool = Field(
        default=True, description="Encrypt every stored artifact with AES-256-GCM."
    )
    admin_user: str | None = Field(
        default=None,
        description="Retired: identity is proven, not set. The home's owner is the OS user "
        "fixed at `ghaf init` (`ghaf admin transfer` changes it); another person uses their "
        "own token. A value here is refused and audited.",
    )
    kek_file: Path | None = Field(
        default=None,
        description="Key-encryption key file; default: <home>/keys/kek.json.",
    )
    audit_checkpoint_every: int = Field(
        default=20,
        ge=1,
        description="Sign an audit checkpoint as soon as N records are not covered by one.",
    )
    audit_checkpoint_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Sign an audit checkpoint once the newest is this old and a record is "
        "not covered (0: after every commit); closing the platform covers the rest.",
    )
    audit_checkpoint_slack_seconds: float = Field(
        default=30.0,
        ge=0,
        description="`ghaf audit verify` fails records left uncovered longer than the "
        "checkpoint interval plus this (slow writers, clock skew); younger ones are a warning.",
    )
    online_pii: Literal["encrypt", "refuse"] = Field(
        default="encrypt",
        description="Feature views whose data is pii, in online stores: 'encrypt' seals each "
        "value with AES-256-GCM (a key per view and store, wrapped by the KEK); 'refuse' "
        "refuses to materialize them.",
    )
    kek: SecretStr | None = Field(
        default=None,
        description="KEK supplied from outside (container secret): base64 of 32 bytes, or "
        "VERSION:BASE64 pairs joined by commas (highest is current); overrides kek_file.",
    )
    kek_id: str = Field(default="static", description="Name of the KEK given in `kek`.")
    residency: dict[str, list[str]] = Field(
        default_factory=_default_residency,
        description="Classification or residency tag -> region patterns its data may be "
        "stored in (fnmatch, e.g. 'ae-*'); data with several tags must satisfy all.",
    )


class KeySettings(BaseModel):
    """Where the key-encryption key (KEK) lives: the home (local) or AWS KMS."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["local", "kms"] = Field(
        default="local",
        description="KEK provider: 'local' (security.kek if set, else the home's key file "
        "security.kek_file) or 'kms' (AWS KMS: every KEK version is a KMS key named by the "
        "alias keys.kms_key_id; no KEK material is ever in the home).",
    )
    kms_key_id: str | None = Field(
        default=None,
        description="KMS alias of the KEK, alias/NAME (its target is the current version; "
        "Ghaf adds alias/NAME/vN per version). `ghaf init` creates the key if the alias does "
        "not exist, or adopts the key it points at.",
    )
    kms_region: str | None = Field(
        default=None,
        description="AWS region of the KMS keys (e.g. me-central-1); unset: the AWS SDK's "
        "default (AWS_REGION, ~/.aws/config).",
    )
    kms_endpoint_url: str | None = Field(
        default=None,
        description="KMS endpoint (a VPC endpoint, or an emulator); unset: AWS's own.",
    )
    kms_deletion_window_days: int = Field(
        default=7,
        ge=7,
        le=30,
        description="Days KMS waits before deleting a destroyed KEK version's key "
        "(ScheduleKeyDeletion; the version is unusable at once).",
    )

    @field_validator("kms_key_id")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"alias/[A-Za-z0-9/_-]{1,240}", value):
            raise ValueError("give a KMS alias, alias/NAME (letters, digits, '/', '_', '-')")
        if value is not None and value.startswith("alias/aws/"):
            raise ValueError("alias/aws/ names AWS managed keys; pick another alias")
        return value

    @model_validator(mode="after")
    def _kms_needs_a_key(self) -> KeySettings:
        if self.provider == "kms" and self.kms_key_id is None:
            raise ValueError("keys.provider 'kms' needs keys.kms_key_id (alias/NAME)")
        return self


class IdentitySettings(BaseModel):
    """OIDC single sign-on: which issuer's tokens Ghaf servers accept, how claims map to roles."""

    model_config = ConfigDict(extra="forbid")

    issuer: str | None = Field(
        default=None,
        description="OIDC issuer URL (its /.well-known/openid-configuration is read); "
        "unset: only Ghaf API tokens are accepted.",
    )
    audience: str = Field(default="ghaf", description="Audience (`aud`) a JWT must carry.")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256"],
        description="Asymmetric JWS algorithms accepted (never none or HS*).",
    )
    leeway_s: int = Field(default=30, ge=0, le=300, description="Clock skew allowed on exp/nbf.")
    required_claims: list[str] = Field(
        default_factory=lambda: ["exp", "iat", "iss", "aud", "sub"],
        description="Claims a JWT must carry (nbf is checked whenever present).",
    )
    subject_claim: str = Field(default="sub", description="Claim naming the principal.")
    groups_claim: str = Field(default="groups", description="Claim listing the groups.")
    role_mapping: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Group (claim value) -> roles, each 'PROJECT:ROLE' ('*:ROLE' = every project).",
    )
    jwks_refresh_min_s: float = Field(
        default=10.0, ge=0, description="Fewest seconds between JWKS refetches on an unknown kid."
    )
    client_id: str | None = Field(default=None, description="OAuth client of `ghaf login`.")
    client_secret: SecretStr | None = Field(
        default=None, description="Secret of the client-credentials login client."
    )

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        bad = [alg for alg in value if alg.lower() == "none" or alg.upper().startswith("HS")]
        if bad or not value:
            raise ValueError("allow only asymmetric algorithms (RS256, PS256, ES256, EdDSA)")
        return value


class TlsSettings(BaseModel):
    """Transport security of every Ghaf HTTP server."""

    model_config = ConfigDict(extra="forbid")

    cert_file: Path | None = Field(default=None, description="Server certificate (PEM chain).")
    key_file: Path | None = Field(default=None, description="Server private key (PEM).")
    client_ca_file: Path | None = Field(
        default=None, description="CA bundle of client certificates; set: mTLS is required."
    )
    allow_plain_http: bool = Field(
        default=False, description="Serve plain HTTP when no certificate is set (development)."
    )


class CostSettings(BaseModel):
    """The price sheet costs are computed with, and how often a running server records.

    Defaults are OpenCost's own default prices (configs/default.json of
    https://github.com/opencost/opencost, "based on GCP us-central1"): CPU 0.031611 per
    vCPU-hour, RAM 0.004237 per GB-hour, GPU 0.95 per GPU-hour. As in OpenCost, each
    resource is charged max(request, usage) x price.
    """

    model_config = ConfigDict(extra="forbid")

    currency: str = Field(default="USD", description="Currency the prices are in.")
    cpu_hour: float = Field(default=0.031611, ge=0, description="Price of one vCPU-hour.")
    memory_gb_hour: float = Field(default=0.004237, ge=0, description="Price of one GB-hour.")
    gpu_hour: float = Field(default=0.95, ge=0, description="Price of one GPU-hour (any class).")
    gpu_classes: dict[str, float] = Field(
        default_factory=dict,
        description="Price of one GPU-hour by machine class (e.g. nvidia-h100: 3.0); a class "
        "not listed costs gpu_hour.",
    )
    record_interval_s: float = Field(
        default=300.0,
        ge=5,
        le=86_400,
        description="Longest time between two usage records of a running ghaf serve (the "
        "first come after 5 s, each gap doubling up to this).",
    )
    sample_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between memory samples of metered work (average GB-hours).",
    )

    @field_validator("gpu_classes")
    @classmethod
    def _prices(cls, value: dict[str, float]) -> dict[str, float]:
        if any(price < 0 for price in value.values()):
            raise ValueError("a GPU class price must be >= 0")
        return value


class IngestSettings(BaseModel):
    """What `ghaf server` may fetch when asked to ingest a URL (it fetches server-side)."""

    model_config = ConfigDict(extra="forbid")

    public_urls: bool = Field(
        default=True,
        description="Whether a URL ingest may fetch http(s) URLs whose host resolves only "
        "to public addresses.",
    )
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts a URL ingest may reach although they are private, loopback or "
        "link-local (refused otherwise): names, IP addresses or CIDR networks, e.g. "
        "['minio.internal', '10.1.2.0/24'].",
    )
    file_root: Path | None = Field(
        default=None,
        description="Directory whose files a file:// URL ingest may read (links resolved "
        "first); unset: file:// URLs are refused.",
    )
    max_bytes: int = Field(
        default=16 * 1024**3, ge=1, description="Largest file a URL ingest fetches, in bytes."
    )


def _servicenow_matrix() -> list[list[int]]:
    return [[1, 2, 3], [2, 3, 4], [3, 4, 5]]


def _severity_levels() -> dict[str, list[int]]:
    return {"critical": [1, 1], "high": [1, 2], "warning": [2, 2], "low": [3, 2], "info": [3, 3]}


class ReceiverSettings(BaseModel):
    """One place alerts (webhook, email, bus) or incident changes (pagerduty, servicenow) go."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook", "email", "pagerduty", "servicenow", "bus"] = Field(
        description="webhook/email/bus get alert notifications; pagerduty (Events v2 shape) "
        "and servicenow (incident shape) get each incident's raise, ack and resolve."
    )
    url: str | None = Field(default=None, description="Endpoint of an HTTP receiver.")
    routing_key: SecretStr | None = Field(default=None, description="PagerDuty routing key.")
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server of an email receiver.")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP session to TLS.")
    smtp_user: str | None = Field(default=None, description="SMTP login (after STARTTLS).")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    mail_from: str = Field(default="ghaf@localhost", description="Sender address of e-mails.")
    mail_to: list[str] = Field(default_factory=list, description="Recipients of e-mails.")
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="Per-delivery timeout.")


class AlertRouteSettings(BaseModel):
    """Alerts whose labels equal every ``match`` pair go to ``receivers``."""

    model_config = ConfigDict(extra="forbid")

    match: dict[str, str] = Field(default_factory=dict, description="Label -> value to match.")
    receivers: list[str] = Field(description="Names of receivers (keys of `receivers`).")


class InhibitRuleSettings(BaseModel):
    """A firing alert matching ``source_match`` mutes alerts matching ``target_match``
    whose ``equal`` labels have the same values (Alertmanager's inhibit_rules)."""

    model_config = ConfigDict(extra="forbid")

    source_match: dict[str, str] = Field(description="Labels of the muting alert.")
    target_match: dict[str, str] = Field(description="Labels of the muted alerts.")
    equal: list[str] = Field(default_factory=list, description="Labels both must share.")


class AlertingSettings(BaseModel):
    """Alert routing, grouping, inhibition, delivery retries and incident priorities."""

    model_config = ConfigDict(extra="forbid")

    receivers: dict[str, ReceiverSettings] = Field(
        default_factory=dict, description="Receivers by name."
    )
    routes: list[AlertRouteSettings] = Field(
        default_factory=list, description="Every matching route's receivers get the alert."
    )
    inhibit_rules: list[InhibitRuleSettings] = Field(
        default_factory=list, description="Which firing alerts mute which others."
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname"], description="Labels one notification groups by."
    )
    group_wait_s: float = Field(
        default=30.0, ge=0, description="Wait before a new group's first notification."
    )
    group_interval_s: float = Field(
        default=300.0, ge=0, description="Least time between two notifications of a group."
    )
    max_attempts: int = Field(default=8, ge=1, le=100, description="Tries per delivery.")
    backoff_base_s: float = Field(default=2.0, gt=0, description="First retry delay (doubles).")
    backoff_max_s: float = Field(default=600.0, gt=0, description="Longest retry delay.")
    severity_levels: dict[str, list[int]] = Field(
        default_factory=_severity_levels,
        description="Alert severity -> [impact, urgency] (1 high .. 3 low) when the alert "
        "gives neither.",
    )
    priority_matrix: list[list[int]] = Field(
        default_factory=_servicenow_matrix,
        description="Incident priority (1..5): row impact, column urgency (each 1..3); "
        "default: ServiceNow's matrix.",
    )

    @field_validator("priority_matrix")
    @classmethod
    def _three_by_three(cls, matrix: list[list[int]]) -> list[list[int]]:
        if len(matrix) != 3 or any(len(row) != 3 for row in matrix):
            raise ValueError("give 3 rows (impact 1..3) of 3 priorities (urgency 1..3)")
        if any(not 1 <= p <= 5 for row in matrix for p in row):
            raise ValueError("priorities are 1 to 5")
        return matrix

    @field_validator("severity_levels")
    @classmethod
    def _levels(cls, levels: dict[str, list[int]]) -> dict[str, list[int]]:
        if any(len(v) != 2 or not all(1 <= x <= 3 for x in v) for v in levels.values()):
            raise ValueError("each severity maps to [impact, urgency], each 1 to 3")
        return levels


class ServerSettings(BaseModel):
    """What `ghaf server` offers its clients beyond the streamed routes."""

    model_config = ConfigDict(extra="forbid")

    presigned_urls: bool = Field(
        default=True,
        description="Hand clients short-lived presigned URLs for one artifact when artifacts "
        "are on S3 (bodies stay encrypted; the server hands out that artifact's data key).",
    )
    presigned_expiry_s: int = Field(
        default=300,
        ge=1,
        le=12 * 3600,
        description="Seconds a presigned URL stays valid (at most 12 hours: a granted upload "
        "must be committed within an hour of it, and `ghaf gc` removes one left a day).",
    )
    presigned_part_mib: int = Field(
        default=64,
        ge=5,
        le=4096,
        description="MiB of ciphertext per part when a presigned upload goes in parts (an S3 "
        "multipart upload, each part PUT through its own URL, in parallel, and sent again "
        "alone when it fails): a file larger than one part is sent in parts. S3 allows 5 MiB "
        "to 5 GiB a part and 10,000 parts; a file that would need more gets larger parts.",
    )
    fetch_allow: list[str] = Field(
        default_factory=list,
        description="Base URLs (scheme://host[:port]) of the `ghaf serve` processes whose "
        "/metrics the server and the live loop may read for canaries and scheduled SLOs; a "
        "target elsewhere is refused. Empty: any http(s) base URL (set it on a shared server, "
        "so a plan cannot make the server probe internal hosts).",
    )
    live_loop: bool = Field(
        default=True,
        description="Run the live loop in the server: due monitors, scheduled SLOs and the "
        "closed loop's retraining, as the home's owner, in one worker at a time.",
    )
    live_loop_every_s: int = Field(
        default=10, ge=1, le=3600, description="Seconds between two passes of the live loop."
    )


class RayServeSettings(BaseModel):
    """How `ghaf serve --on ray://HOST:PORT` deploys on Ray Serve: the autoscaling policy
    (Ray Serve's own, see its autoscaling guide), each replica's share of a node, and the
    Serve HTTP proxy."""

    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(
        default=1,
        ge=0,
        description="Fewest replicas; 0 scales to zero when idle (a request that then "
        "arrives waits, up to request_timeout_s, for a replica to load and verify its model).",
    )
    max_replicas: int = Field(default=4, ge=1, description="Most replicas.")
    initial_replicas: int | None = Field(
        default=None, ge=0, description="Replicas at deployment; default: min_replicas."
    )
    target_ongoing_requests: float = Field(
        default=2.0,
        gt=0,
        description="Requests in flight (running and queued) per replica the autoscaler "
        "aims for: more replicas when above it, fewer when below.",
    )
    upscale_delay_s: float = Field(
        default=30.0, ge=0, description="Seconds the load must stay high before scaling up."
    )
    downscale_delay_s: float = Field(
        default=600.0,
        ge=0,
        description="Seconds the load must stay low before scaling down (to 1 or more).",
    )
    downscale_to_zero_delay_s: float | None = Field(
        default=None,
        ge=0,
        description="Seconds without requests before the last replica stops (min_replicas "
        "0); default: downscale_delay_s.",
    )
    look_back_period_s: float = Field(
        default=30.0, gt=0, description="Window the in-flight requests are averaged over."
    )
    metrics_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="How often replicas and the proxy report their in-flight requests "
        "(must be below look_back_period_s).",
    )
    max_ongoing_requests: int = Field(
        default=32,
        ge=1,
        description="Requests one replica takes at once (its batcher groups them); more wait "
        "in the proxy.",
    )
    max_queued_requests: int = Field(
        default=1000,
        ge=1,
        description="Requests the proxy holds while no replica has room (scaling from zero "
        "included); beyond it a request is answered 503.",
    )
    request_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Longest a request may take end to end, its wait for a replica "
        "included (a cold start loads and verifies the model first).",
    )
    num_cpus: float = Field(
        default=1.0, gt=0, description="CPUs each replica reserves (fractions allowed)."
    )
    proxy_location: Literal["HeadOnly", "EveryNode"] = Field(
        default="HeadOnly",
        description="Where Serve's HTTP proxy runs: the head node only, or every node with a "
        "replica (each on the same port, so one node per machine).",
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> RayServeSettings:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be at least min_replicas")
        if self.initial_replicas is not None and not (
            self.min_replicas <= self.initial_replicas <= self.max_replicas
        ):
            raise ValueError("initial_replicas must lie between min_replicas and max_replicas")
        if self.metrics_interval_s >= self.look_back_period_s:
            raise ValueError("metrics_interval_s must be below look_back_period_s")
        return self


class ServingSettings(BaseModel):
    """`ghaf serve` beyond its command-line options."""

    model_config = ConfigDict(extra="forbid")

    ray: RayServeSettings = Field(
        default_factory=RayServeSettings,
        description="How `ghaf serve --on ray://HOST:PORT` deploys on Ray Serve, a table "
        "`[serving.ray]`: min_replicas, max_replicas, initial_replicas, "
        "target_ongoing_requests, upscale_delay_s, downscale_delay_s, "
        "downscale_to_zero_delay_s, look_back_period_s, metrics_interval_s, "
        "max_ongoing_requests, max_queued_requests, request_timeout_s (the serving guide, "
        "'On Ray Serve', gives each one's meaning and default).",
    )


class RetentionSettings(BaseModel):
    """How long data is kept (`ghaf retention run`), and how erasure finds a subject's
    predictions (`ghaf erase subject`)."""

    model_config = ConfigDict(extra="forbid")

    prediction_log_days: int | None = Field(
        default=90,
        ge=1,
        description="Days a prediction log file is kept after its newest prediction "
        "(HOME/predictions and retention.prediction_log_dirs); null: kept forever.",
    )
    datasets: dict[str, int] = Field(
        default_factory=lambda: {"pii": 365},
        description="Days a dataset version is kept after it was written, by the strongest "
        "classification of its columns (pii, sensitive, public, or 'unclassified'); a "
        "classification not listed is kept forever. Expired versions are crypto-shredded.",
    )
    keep_latest: bool = Field(
        default=True,
        description="Never expire the latest version of a dataset (what is in use); only "
        "versions it superseded age out.",
    )
    run_every_hours: int | None = Field(
        default=24,
        ge=1,
        le=24 * 31,
        description="How often the live loop in `ghaf server` runs retention (as the home's "
        "owner); null: only when someone runs `ghaf retention run`.",
    )
    prediction_log_dirs: list[Path] = Field(
        default_factory=list,
        description="Prediction log directories besides HOME/predictions (ghaf serve "
        "--log-dir) that retention and erasure cover.",
    )
    request_id_columns: list[str] = Field(
        default_factory=lambda: ["request_id", "tx_id", "transaction_id"],
        description="Columns of a subject's rows whose values are the request ids of their "
        "predictions (ghaf serve logs the caller's id): erasure removes those predictions.",
    )

    @field_validator("datasets")
    @classmethod
    def _check_days(cls, value: dict[str, int]) -> dict[str, int]:
        known = {"pii", "sensitive", "public", "unclassified"}
        for tag, days in value.items():
            if tag not in known:
                raise ValueError(f"unknown classification {tag!r}: use {', '.join(sorted(known))}")
            if days < 1:
                raise ValueError(f"retention of {tag} datasets must be at least 1 day")
        return value


class BackupSettings(BaseModel):
    """Where ``ghaf server`` writes the backups a client starts (``POST /backups``)."""

    model_config = ConfigDict(extra="forbid")

    destination: str | None = Field(
        default=None,
        description="A directory or s3://BUCKET/PREFIX (on s3_endpoint_url, in "
        "artifact_region) under which each backup the server makes gets a new folder named "
        "by its id; a client never names a path. Unset: the server makes no backups "
        "(`ghaf backup DEST` on the home still does).",
    )


class KubernetesSettings(BaseModel):
    """What `ghaf deployments export --k8s` writes: images, existing secrets, scale."""

    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(default="ghaf", description="Namespace the manifests are for.")
    server_image: str | None = Field(
        default=None,
        description="Control-plane image (deploy/docker/server.Dockerfile); default: "
        "ghaf-server:<this Ghaf's version>.",
    )
    inference_image: str | None = Field(
        default=None,
        description="CPU inference image (deploy/docker/inference.Dockerfile); default: "
        "ghaf-inference:<this Ghaf's version>.",
    )
    gpu_image: str | None = Field(
        default=None,
        description="GPU inference image (deploy/docker/inference-gpu.Dockerfile); default: "
        "ghaf-inference-gpu:<this Ghaf's version>.",
    )
    env_secret: str = Field(
        default="ghaf-env",
        description="Existing Secret whose keys become GHAF_* variables of every pod "
        "(metadata and artifact URLs, S3 credentials, GHAF_SECURITY__KEK); never written.",
    )
    tls_secret: str = Field(
        default="ghaf-tls",
        description="Existing kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) the "
        "servers listen with.",
    )
    metrics_secret: str = Field(
        default="ghaf-metrics-token",
        description="Existing Secret with key 'token': a Ghaf API token allowed "
        "monitoring.read, which Prometheus presents to /metrics.",
    )
    home_claim: str = Field(
        default="ghaf-home",
        description="Existing PersistentVolumeClaim (ReadWriteMany) mounted as the platform "
        "home: signing keys, trust store, audit checkpoints.",
    )
    host: str | None = Field(
        default=None, description="Ingress host of the control plane; unset: any host."
    )
    ingress_class: str = Field(default="nginx", description="IngressClass of the Ingress.")
    ingress_namespace: str = Field(
        default="ingress-nginx",
        description="Namespace of the ingress controller, the only one that may reach the "
        "control plane's port besides in-namespace clients and Prometheus.",
    )
    prometheus_namespace: str = Field(
        default="monitoring", description="Namespace Prometheus scrapes from."
    )
    server_min_replicas: int = Field(
        default=2, ge=1, le=100, description="Fewest control-plane pods (HPA minimum)."
    )
    server_max_replicas: int = Field(
        default=6, ge=1, le=100, description="Most control-plane pods (HPA maximum)."
    )
    server_cpu_percent: int = Field(
        default=70, ge=1, le=100, description="CPU utilisation the HPA keeps the server at."
    )
    inference_min_replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Fewest predictor pods of an InferenceService (0: scale to zero, "
        "Serverless mode only).",
    )
    inference_max_replicas: int = Field(
        default=4, ge=1, le=1000, description="Most predictor pods of an InferenceService."
    )
    inference_scale_metric: Literal["concurrency", "rps", "cpu", "memory"] = Field(
        default="concurrency", description="What KServe scales predictors on."
    )
    inference_scale_target: int = Field(
        default=8,
        ge=1,
        description="Target of the scale metric per pod (in-flight requests, requests a "
        "second, or percent of the request for cpu and memory).",
    )
    deployment_mode: Literal["RawDeployment", "Serverless"] = Field(
        default="RawDeployment",
        description="KServe deployment mode: RawDeployment (Deployment, Service, HPA) or "
        "Serverless (Knative: scale to zero, traffic split by revision).",
    )

    @field_validator("namespace", "env_secret", "tls_secret", "metrics_secret", "home_claim")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.fullmatch(value):
            raise ValueError("a Kubernetes name is lowercase letters, digits and '-' (1-63)")
        return value


_SINK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SD_NAME = re.compile(r"[!-~]{1,32}")


class AuditSinkSettings(BaseModel):
    """One log system the audit trail is shipped to: syslog over TLS or an HTTP JSON endpoint."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="Where records go: syslog+tls://HOST:PORT (RFC 5424 messages, RFC 5425 "
        "octet-counted framing; 6514 is the registered port) or https://HOST/PATH (a JSON "
        "batch POSTed per delivery)."
    )
    enabled: bool = Field(default=True, description="Ship to this sink (false: keep its cursor).")
    start: Literal["first", "next"] = Field(
        default="first",
        description="Where a new sink's cursor starts: 'first' ships the whole trail, 'next' "
        "only records appended after its first pass.",
    )
    ca_file: Path | None = Field(
        default=None,
        description="CA certificates (PEM) that verify the sink's certificate; unset: the "
        "system's trust store. Verification is never turned off.",
    )
    cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) presented to the sink (mTLS)."
    )
    key_file: Path | None = Field(default=None, description="Key of `cert_file` (PEM).")
    token: SecretStr | None = Field(
        default=None, description="HTTP sink: bearer token sent as `Authorization: Bearer`."
    )
    token_file: Path | None = Field(
        default=None, description="HTTP sink: file holding the bearer token (a mounted secret)."
    )
    username: str | None = Field(default=None, description="HTTP sink: basic-auth user.")
    password: SecretStr | None = Field(default=None, description="HTTP sink: basic-auth password.")
    password_file: Path | None = Field(
        default=None, description="HTTP sink: file holding the basic-auth password."
    )
    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Most records in one delivery."
    )
    timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Connect, write and acknowledgement timeout."
    )
    backoff_base_s: float = Field(
        default=1.0, gt=0, description="Wait after the first failed delivery (doubles each time)."
    )
    backoff_max_s: float = Field(
        default=60.0, gt=0, description="Longest wait between two tries (the backoff's cap)."
    )
    hostname: str | None = Field(
        default=None,
        description="Syslog HOSTNAME field; default: this machine's host name.",
    )
    app_name: str = Field(default="ghaf", description="Syslog APP-NAME field.")
    facility: int = Field(
        default=13, ge=0, le=23, description="Syslog facility (13: log audit, RFC 5424)."
    )
    sd_id: str = Field(
        default="ghafAudit@32473",
        description="Syslog SD-ID of the structured data carrying seq and hashes (NAME@PEN; "
        "32473 is the documentation enterprise number: put your own).",
    )

    @field_validator("url")
    @classmethod
    def _sink_url(cls, value: str) -> str:
        from urllib.parse import urlparse

        parsed = urlparse(value)
        if parsed.scheme not in ("syslog+tls", "https") or not parsed.hostname:
            raise ValueError(
                "use syslog+tls://HOST:PORT or https://HOST/PATH (records leave only over TLS)"
            )
        if parsed.scheme == "syslog+tls" and parsed.port is None:
            raise ValueError("a syslog sink needs a port, e.g. syslog+tls://siem.example:6514")
        if parsed.username or parsed.password:
            raise ValueError("put credentials in token/username/password, not in the URL")
        return value

    @field_validator("hostname", "app_name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[!-~]{1,48}", value):
            raise ValueError("printable ASCII without spaces, 1 to 48 characters")
        return value

    @field_validator("sd_id")
    @classmethod
    def _sd_id(cls, value: str) -> str:
        if not _SD_NAME.fullmatch(value) or any(c in value for c in '= ]"'):
            raise ValueError("an SD-ID is 1-32 printable characters without '=', ' ', ']', '\"'")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> AuditSinkSettings:
        https = self.url.startswith("https:")
        http_only = {
            "token": self.token,
            "token_file": self.token_file,
            "username": self.username,
            "password": self.password,
            "password_file": self.password_file,
        }
        given = [name for name, value in http_only.items() if value is not None]
        if given and not https:
            raise ValueError(f"{given[0]} is for https:// sinks; syslog authenticates by mTLS")
        if self.token is not None and self.token_file is not None:
            raise ValueError("give token or token_file, not both")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        has_password = self.password is not None or self.password_file is not None
        if has_password != (self.username is not None):
            raise ValueError("basic auth needs both username and password (or password_file)")
        if self.username is not None and (self.token is not None or self.token_file is not None):
            raise ValueError("give a bearer token or basic auth, not both")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must be at least backoff_base_s")
        return self


class AuditShippingSettings(BaseModel):
    """Shipping the audit trail (operations and access events) to the enterprise's log system."""

    model_config = ConfigDict(extra="forbid")

    sinks: dict[str, AuditSinkSettings] = Field(
        default_factory=dict,
        description="Sinks by name (lowercase letters, digits, '-', '_'); each keeps its own "
        "cursor in the metadata store.",
    )
    interval_s: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="Seconds between passes of `ghaf audit ship --loop` (and the server's).",
    )

    @field_validator("sinks")
    @classmethod
    def _names(cls, sinks: dict[str, AuditSinkSettings]) -> dict[str, AuditSinkSettings]:
        for name in sinks:
            if not _SINK_NAME.fullmatch(name):
                raise ValueError(
                    f"sink name {name!r}: lowercase letters, digits, '-' and '_' (1-63)"
                )
        return sinks


class GhafSettings(BaseSettings):
    """Every knob Ghaf has, each with a description; see the module docstring for sources."""

    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(
        default=Path("~/.ghaf"),
        description="Platform home: metadata, artifacts, keys and ghaf.toml live here.",
    )
    project: str = Field(default="default", description="Project used when none is given.")
    metadata_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata store; default: SQLite in the home.",
    )
    artifact_url: str | None = Field(
        default=None,
        description="Artifact store URL (file:///path or s3://bucket/prefix); default: home.",
    )
    artifact_region: str = Field(
        default="local", description="Region the artifact store's data lives in."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, Ceph...)."
    )
    online_store_url: str | None = Field(
        default=None, description="Online feature store URL (sqlite:///..., redis://...)."
    )
    online_store_region: str | None = Field(
        default=None,
        description="Region the online store's data lives in; default: artifact_region.",
    )
    event_bus_url: str = Field(
        default="memory://", description="Event bus URL: memory:// or nats://host:port."
    )
    executor: Literal["local", "ray"] = Field(
        default="local", description="Pipeline executor: local processes or Ray."
    )
    ray_address: str | None = Field(default=None, description="Ray cluster address.")
    pipelines: list[str] = Field(
        default_factory=list,
        description="Pipelines `ghaf server` runs when a client submits them, and that a "
        "retraining policy may name (ghaf deployments retrain-on), each the "
        "MODULE:ATTRIBUTE `ghaf pipelines run` takes (e.g. ghaf.pipelines.examples:numbers); "
        "nothing else is imported, and a client never sends code or a path.",
    )
    log_format: Literal["human", "json"] = Field(
        default="human", description="Log lines for people (human) or log pipelines (json)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of log lines written."
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector (http://host:4318) that `ghaf server` sends one "
        "trace span per request to; unset: no tracing.",
    )
    lineage_url: str | None = Field(
        default=None,
        description="Where OpenLineage events go: a JSON-lines file path (default "
        "<home>/lineage/openlineage.jsonl), an http(s):// endpoint to POST to, or 'off'.",
    )
    prices: dict[str, float] = Field(
        default_factory=lambda: {"cpu": 0.05, "gpu": 2.5, "gpu:nvidia-h100": 3.0},
        description="Training cost table, in currency units per hour: 'cpu' per CPU-hour "
        "(CPU seconds used), 'gpu' per GPU-hour for an unlisted GPU, 'gpu:<class>' per "
        "GPU-hour of one machine class (e.g. gpu:nvidia-h100, gpu:nvidia-h200).",
    )
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    keys: KeySettings = Field(default_factory=KeySettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    cost: CostSettings = Field(default_factory=CostSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    audit_shipping: AuditShippingSettings = Field(default_factory=AuditShippingSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    local_principals: list[str] = Field(
        default_factory=list,
        description="Retired: naming principals in a setting made them admins; a second "
        "person now acts with their own token. A value here is refused and audited.",
    )
    url: str | None = Field(
        default=None,
        description="A `ghaf server` to work against (GHAF_URL, `ghaf --url`): the CLI and "
        "SDK become its clients; unset: embedded mode on the home.",
    )
    token: SecretStr | None = Field(
        default=None,
        description="Credential the CLI and SDK present (a Ghaf API token or an OIDC JWT; "
        "`ghaf --token`, GHAF_TOKEN); unset: the home's owner, proven by the OS account.",
    )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("artifact_region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if not value or not set(value) <= _REGION_CHARS:
            raise ValueError("a region is lowercase letters, digits and '-', e.g. ae-auh-1")
        return value

    @field_validator("metadata_url")
    @classmethod
    def _check_metadata_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        return value

    @field_validator("event_bus_url")
    @classmethod
    def _check_bus_url(cls, value: str) -> str:
        if not value.startswith(("memory://", "nats://")):
            raise ValueError("use memory:// or nats://HOST:PORT")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = _home_before_validation(init_settings)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=home / SETTINGS_FILE)
        return (init_settings, env_settings, toml)

    # Resolved locations -------------------------------------------------------------

    @property
    def resolved_metadata_url(self) -> str:
        """The metadata URL, defaulting to SQLite in the home."""
        return self.metadata_url or f"sqlite:///{self.home / 'ghaf.db'}"

    @property
    def resolved_artifact_url(self) -> str:
        """The artifact store URL, defaulting to a directory in the home."""
        return self.artifact_url or (self.home / "artifacts").as_uri()

    @property
    def resolved_online_store_url(self) -> str:
        """The online store URL, defaulting to SQLite in the home."""
        return self.online_store_url or f"sqlite:///{self.home / 'online.db'}"

    @property
    def asserted_identity(self) -> list[str]:
        """Retired settings that tried to name who acts (each refused and audited)."""
        found = []
        if self.security.admin_user:
            found.append(f"security.admin_user={self.security.admin_user!r}")
        if self.local_principals:
            found.append(f"local_principals={self.local_principals!r}")
        return found

    @property
    def kek_path(self) -> Path:
        """Where the local key-encryption key lives."""
        return self.security.kek_file or self.home / "keys" / "kek.json"


def _home_before_validation(init_settings: PydanticBaseSettingsSource) -> Path:
    """Find the home early, because ``ghaf.toml`` lives inside it."""
    given: Any = init_settings().get("home") or os.environ.get(f"{_ENV_PREFIX}HOME")
    return Path(given or "~/.ghaf").expanduser()


def load_settings(**overrides: Any) -> GhafSettings:
    """Build the settings, turning validation failures into one clear ``ConfigError`` line.

    Raises:
        ConfigError: naming the key, the value given and what is accepted.
    """
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        return GhafSettings(**clean)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    except (OSError, ValueError) as exc:  # a malformed ghaf.toml
        raise ConfigError(f"cannot read {SETTINGS_FILE}: {exc}") from exc


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    env_name = _ENV_PREFIX + key.upper().replace(".", "__")
    value = first.get("input")
    reason = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"unknown setting {key!r} ({env_name}); remove it or check its spelling"
    return f"setting {key} ({env_name}) = {value!r} is invalid: {reason}"
