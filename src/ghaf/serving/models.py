"""Served models: resolve ``MODEL@ALIAS``, verify the files, load a runtime, or stay not-ready."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ghaf.errors import GhafError, IntegrityError, NotFoundError
from ghaf.logs import get_logger
from ghaf.serving.base import ModelSpec, Runtime, Signature
from ghaf.serving.batching import Batcher, BatchPolicy
from ghaf.serving.runtimes import load_runtime

DIGESTS_FILE = "ghaf-digests.json"
"""Fallback manifest (SHA-256 per file) used only where ``ghaf.security.signing`` is absent."""
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


def verify_files(platform: Any, model_dir: Path) -> list[str]:
    """The files a valid signature lists; raises ``IntegrityError`` on any failure.

    Uses ``ghaf.security.signing.verify_model_dir`` (OpenSSF model signing) when it is
    installed; otherwise the SHA-256 manifest written by :func:`write_digests`.
    """
    try:
        signing = importlib.import_module("ghaf.security.signing")
    except ImportError:
        signing = None
    if signing is not None and platform is not None:
        try:
            return list(signing.verify_model_dir(platform.settings, model_dir))
        except IntegrityError:
            raise
        except Exception as exc:  # every verification failure is a refusal
            raise IntegrityError(
                f"signature of {model_dir.name} does not verify: {exc}",
                hint="re-register the model so it is signed",
            ) from exc
    return verify_digests(model_dir)


def write_digests(model_dir: Path) -> None:
    """Write the fallback SHA-256 manifest of every file in ``model_dir``."""
    files = {
        str(path.relative_to(model_dir)): _sha256(path)
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.name != DIGESTS_FILE
    }
    (model_dir / DIGESTS_FILE).write_bytes(orjson.dumps({"files": files}))


def verify_digests(model_dir: Path) -> list[str]:
    manifest = model_dir / DIGESTS_FILE
    if not manifest.is_file():
        raise IntegrityError(
            f"{model_dir} has no signature or digest manifest",
            hint="serve models from the registry, which signs them at registration",
        )
    try:
        files: dict[str, str] = orjson.loads(manifest.read_bytes())["files"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{manifest} is malformed", hint="re-register the model") from exc
    for name, want in files.items():
        path = model_dir / name
        if not path.is_file() or _sha256(path) != want:
            raise IntegrityError(
                f"{name} in {model_dir} does not match its digest",
                hint="the model files were changed after signing; re-download them",
            )
    return list(files)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_served(
    spec: ModelSpec,
    *,
    platform: Any = None,
    policy: BatchPolicy | None = None,
    verify: bool = True,
) -> ServedModel:
    """Verify, load and warm ``spec``; on any failure return it not-ready with the reason."""
    served = ServedModel(spec)
    try:
        allowed = verify_files(platform, spec.path) if verify else None
        options = dict(spec.options)
        options.setdefault("threads", (policy or BatchPolicy()).threads)
        runtime = load_runtime(
            spec.flavor, spec.path, spec.signature, allowed_files=allowed, **options
        )
        runtime.warmup()
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


def resolve_model(platform: Any, ref: str, dest_root: Path) -> ModelSpec:
    """``name``, ``name:3`` or ``name@alias`` from the registry, downloaded and verified.

    Raises:
        NotFoundError: the registry is not installed or has no such model.
    """
    try:
        registry = importlib.import_module("ghaf.registry")
    except ImportError as exc:
        raise NotFoundError(
            f"cannot resolve {ref!r}: the model registry is not available",
            hint="serve a local model directory with --flavor instead",
        ) from exc
    version = registry.get_model_version(platform, ref)
    dest = dest_root / f"{version.name}-{version.version}"
    path = Path(registry.download_model(platform, f"{version.name}:{version.version}", dest))
    signature = None
    if getattr(version, "signature", None):
        raw = version.signature
        signature = Signature.from_json(orjson.loads(raw) if isinstance(raw, str | bytes) else raw)
    return ModelSpec(version.name, str(version.version), str(version.flavor), path, signature)
