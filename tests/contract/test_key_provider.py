"""The key-provider contract on every provider: the home's key file, a KEK given in
settings, and AWS KMS (moto's server on 127.0.0.1)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ghaf.security.base import KeyProvider
from ghaf.security.keys import LocalKeyProvider, StaticKeyProvider
from ghaf.security.kms import KmsKeyProvider
from ghaf.testing import KeyProviderContract, VersionedKeyProviderContract
from tests.kms_emulator import REGION, kms_endpoint, new_alias

Factory = Callable[[], KeyProvider]


def _local(tmp_path: Path) -> Factory:
    path = tmp_path / "keys" / "kek.json"
    LocalKeyProvider(path).create()
    return lambda: LocalKeyProvider(path)


def _kms(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Factory:
    endpoint = kms_endpoint(request, monkeypatch)
    alias = new_alias()

    def open_kms() -> KeyProvider:
        return KmsKeyProvider(alias, region=REGION, endpoint_url=endpoint)

    KmsKeyProvider(alias, region=REGION, endpoint_url=endpoint).create()
    return open_kms


class TestVersionedKeyProvider(VersionedKeyProviderContract):
    @pytest.fixture(params=["local", "kms"])
    def key_provider_factory(
        self,
        request: pytest.FixtureRequest,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Factory:
        if request.param == "local":
            return _local(tmp_path)
        return _kms(request, monkeypatch)


class TestStaticKeyProvider(KeyProviderContract):
    @pytest.fixture
    def key_provider_factory(self) -> Factory:
        spec = ",".join(f"{v}:{base64.b64encode(os.urandom(32)).decode()}" for v in (1, 2))
        return lambda: StaticKeyProvider("static", spec)
