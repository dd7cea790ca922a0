"""Served models: resolve ``MODEL@ALIAS``, verify the files, load a runtime, or stay not-ready."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghaf.errors import GhafError, IntegrityError
from ghaf.logs import get_logger
from ghaf.models.checks import check_model_dir
from ghaf.platform import Platform
from ghaf.security.release_manifest import check_release
from ghaf.security.signing import SignedDir, verify_signed_dir
from ghaf.serving.base import ModelSpec, Runtime, Signature
from ghaf.serving.batching import Batcher, BatchPolicy
from ghaf.serving.runtimes import load_runtime
from ghaf.settings import GhafSettings

_log = get_logger(__name__)


@dataclass
class ServedModel:
    """One model version behind the server: ready with a batcher, or not-ready with a reason."""

    spec: ModelSpec
    runtime: Runtime | None = None
    batcher: Batcher | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    @property
    def signature(self) -> Signature | None:
        return self.runtime.signature if self.runtime is not None else self.spec.signature


def verify_files(settings: GhafSettings, model_dir: Path) -> list[str]:
    """The files the trusted signature over ``model_dir`` lists: the only ones to load.

    Raises:
        IntegrityError: any failure at all (unsigned, changed, extra or missing file,
            untrusted key, unreadable bundle), naming what failed.
    """
    return sorted(verify_signed(settings, model_dir).files)


def verify_signed(settings: GhafSettings, model_dir: Path) -> SignedDir:
    """What the trusted signature over ``model_dir`` covers: its files and release.

    Raises:
        IntegrityError: as :func:`verify_files`.
    """
    try:
        return verify_signed_dir(settings, model_dir)
    except GhafError:
        raise
    except Exception as exc:  # every verification failure is a refusal
        raise IntegrityError(
            f"signature of {model_dir.name} does not verify: {type(exc).__name__}: {exc}",
            hint="re-register the model so it is signed",
        ) from exc


def load_served(
    spec: ModelSpec, *, platform: Platform | None, policy: BatchPolicy | None = None
) -> ServedModel:
    """Verify, load and warm ``spec``; on any failure return it not-ready with the reason.

    Only the files the platform's trust store accepts are loaded; without a platform
    there is no trust store, so the model is refused. A registry version (``spec.project``
    set) must be signed for exactly its model, version and project; a directory from the
    command line, when it names a release, for the name and version it is served as.
    """
    served = ServedModel(spec)
    try:
        if platform is None:
            raise IntegrityError(
                f"model {spec.name} cannot be verified: no platform home to hold the trust store",
                hint="serve with --home (or GHAF_HOME) set to the home that trusts its key",
            )
        runtime = verified_runtime(
            platform.settings, spec, threads=(policy or BatchPolicy()).threads
        )
    except GhafError as exc:
        served.error = exc.headline
        _log.warning("model refused", model=spec.name, version=spec.version, reason=exc.headline)
        return served
    except Exception as exc:  # noqa: BLE001 - a model that cannot load must not take the server down
        served.error = f"{type(exc).__name__}: {exc}"
        _log.warning("model failed to load", model=spec.name, error=served.error)
        return served
    served.runtime = runtime
    served.batcher = Batcher(f"{spec.name}-{spec.version}", runtime, policy)
    return served


def verified_runtime(settings: GhafSettings, spec: ModelSpec, *, threads: int) -> Runtime:
    """Verify ``spec``'s files against the trust store of ``settings``, then load (only the
    signed files) and warm its runtime: what every process that scores a model does first.

    A registry version (``spec.project`` set) must be signed for exactly its model,
    version and project; a directory, when it names a release, for its name and version.

    Raises:
        IntegrityError: the signature or the release does not verify.
    """
    signed = verify_signed(settings, spec.path)
    if spec.project is not None or signed.release is not None:
        check_release(signed.release, model=spec.name, version=spec.version, project=spec.project)
    options = dict(spec.options)
    options.setdefault("threads", threads)
    runtime = load_runtime(
        spec.flavor, spec.path, spec.signature, allowed_files=sorted(signed.files), **options
    )
    runtime.warmup()
    return runtime


def resolve_model(
    platform: Platform, ref: str, dest_root: Path, *, serving: bool = True
) -> ModelSpec:
    """``name``, ``name:3`` or ``name@alias`` from the registry, downloaded and verified.

    ``serving`` (a server will answer requests with it): the project's release policy
    must allow the version on the alias it is served under (or at all, when deployments
    are protected); batch scoring passes ``False``.

    Raises:
        NotFoundError: the registry has no such model.
        PolicyViolationError: the release policy does not allow serving it, naming what
            is missing.
        IntegrityError: a stored digest or the signature does not verify.
    """
    # Here, not at the top: a model directory (ghaf predict DIR --flavor) needs no registry.
    from ghaf.registry import download_model, get_model_version
    from ghaf.registry.base import parse_ref
    from ghaf.registry.code_policy import get_code_policy
    from ghaf.registry.release import check_serving

    version = get_model_version(platform, ref)
    if serving:
        check_serving(platform, version, parse_ref(ref).alias)
    dest = dest_root / f"{version.name}-{version.version}"
    path = download_model(platform, version.ref, dest)
    check_model_dir(path, code_policy=get_code_policy(platform, version.project))
    signature = Signature.from_json(version.signature) if version.signature else None
    return ModelSpec(
        version.name,
        str(version.version),
        str(version.flavor),
        path,
        signature,
        project=version.project,
    )


def local_model(settings: GhafSettings, directory: Path, flavor: str) -> ModelSpec:
    """A model directory given on the command line, accepted only if a trusted key signed it.

    There is no registry to ask what it is: it is served as the model and version its
    signed ``ghaf-release.json`` claims (a downloaded version), else as the directory's
    name, version 1 (a directory signed without one).

    Raises:
        IntegrityError: the directory is not signed by a key in the trust store.
    """
    try:
        signed = verify_signed(settings, directory)
    except IntegrityError as exc:
        raise IntegrityError(
            f"model directory {directory} was refused: {exc.headline}",
            hint="register it with `ghaf models register NAME DIR`, then use NAME:VERSION",
        ) from exc
    check_model_dir(directory)  # what a loader would refuse (no project: custom code is off)
    claimed = signed.release
    if claimed is None:
        return ModelSpec(directory.name, "1", flavor, directory.resolve())
    _log.info(
        "model directory signed for a release",
        directory=str(directory),
        model=claimed.ref,
        project=claimed.project,
    )
    return ModelSpec(claimed.model, str(claimed.version), flavor, directory.resolve())
