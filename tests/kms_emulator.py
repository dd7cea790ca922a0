"""AWS KMS for tests: moto's server on 127.0.0.1 (the conftest's ``s3_endpoint``, which
serves every AWS API moto has), credentials for it, and the key material it holds."""

from __future__ import annotations

import importlib.util
import uuid

import pytest

from tests.conftest import service_missing

REGION = "me-central-1"
"""The UAE region: where the reference customer's keys live."""
ACCOUNT = "123456789012"
"""moto's account for any access key."""


def kms_endpoint(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator's URL, with credentials for it in the environment (and so in every
    process a test starts); fails, naming the fix, when moto is not installed."""
    if importlib.util.find_spec("moto") is None:
        service_missing(
            "moto (the AWS KMS emulator)",
            "the moto package is not installed",
            "install the dev extra: make venv (pip install -e '.[dev]')",
        )
    endpoint = str(request.getfixturevalue("s3_endpoint"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    return endpoint


def new_alias() -> str:
    """A KMS alias no other test uses (the emulator lives for the whole session)."""
    return f"alias/ghaf-test/{uuid.uuid4().hex[:12]}"


def key_material() -> list[bytes]:
    """The raw material of every KMS key the emulator holds (the oracle for "no KEK byte
    is stored in the home"; it is read in this process, where the server runs)."""
    from moto.kms.models import kms_backends

    backend = kms_backends[ACCOUNT][REGION]
    return [bytes(key.key_material) for key in backend.keys.values()]
