"""Contract suites for key providers: what wrapping, rotation and shredding must do.

Provide a ``key_provider_factory`` fixture: a callable that opens a new handle on one
KEK made for the test (its first version already created), as another process of the
same deployment would. :class:`KeyProviderContract` holds for every provider;
:class:`VersionedKeyProviderContract` adds rotation and crypto-shredding for providers
whose ``supports_rotation`` is True.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import cast

import pytest

from ghaf.errors import IntegrityError, InvalidInputError, NotFoundError
from ghaf.security.base import KeyProvider, VersionedKeyProvider

Factory = Callable[[], KeyProvider]
CONTEXT = b'{"body":"0123abcd","context":{"artifact":"sha256:00","project":"p"}}'


def _flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 0x01]) + blob[index + 1 :]


class KeyProviderContract:
    """Wrapping and unwrapping data keys, bound to their context."""

    @pytest.fixture
    def key_provider(self, key_provider_factory: Factory) -> KeyProvider:
        return key_provider_factory()

    def test_round_trip_under_the_current_version(self, key_provider: KeyProvider) -> None:
        data_key = os.urandom(32)
        wrapped = key_provider.wrap(data_key, CONTEXT)
        assert wrapped.key_id == key_provider.key_id
        assert wrapped.version == key_provider.current_version()
        assert key_provider.unwrap(wrapped, CONTEXT) == data_key

    def test_the_wrapped_key_hides_the_data_key_and_is_randomized(
        self, key_provider: KeyProvider
    ) -> None:
        data_key = os.urandom(32)
        first = key_provider.wrap(data_key, CONTEXT)
        second = key_provider.wrap(data_key, CONTEXT)
        assert first.blob != second.blob
        assert data_key not in first.blob and data_key.hex().encode() not in first.blob

    def test_another_handle_on_the_same_kek_unwraps(
        self, key_provider: KeyProvider, key_provider_factory: Factory
    ) -> None:
        data_key = os.urandom(32)
        wrapped = key_provider.wrap(data_key, CONTEXT)
        other = key_provider_factory()
        assert other.key_id == key_provider.key_id
        assert other.unwrap(wrapped, CONTEXT) == data_key

    def test_another_context_does_not_unwrap(self, key_provider: KeyProvider) -> None:
        wrapped = key_provider.wrap(os.urandom(32), CONTEXT)
        with pytest.raises(IntegrityError, match="does not verify"):
            key_provider.unwrap(wrapped, CONTEXT.replace(b'"p"', b'"q"'))

    @pytest.mark.parametrize("where", [0, -1])
    def test_an_altered_wrapped_key_does_not_unwrap(
        self, key_provider: KeyProvider, where: int
    ) -> None:
        wrapped = key_provider.wrap(os.urandom(32), CONTEXT)
        index = where % len(wrapped.blob)
        altered = replace(wrapped, blob=_flip(wrapped.blob, index))
        with pytest.raises(IntegrityError):
            key_provider.unwrap(altered, CONTEXT)

    def test_a_wrapped_key_of_another_kek_is_refused_by_name(
        self, key_provider: KeyProvider
    ) -> None:
        wrapped = key_provider.wrap(os.urandom(32), CONTEXT)
        foreign = replace(wrapped, key_id="another-kek")
        with pytest.raises(NotFoundError, match="another-kek"):
            key_provider.unwrap(foreign, CONTEXT)

    def test_a_version_that_never_existed_is_not_found(self, key_provider: KeyProvider) -> None:
        wrapped = key_provider.wrap(os.urandom(32), CONTEXT)
        with pytest.raises(NotFoundError, match="version 99"):
            key_provider.unwrap(replace(wrapped, version=99), CONTEXT)

    def test_rewrap_keeps_the_data_key(self, key_provider: KeyProvider) -> None:
        data_key = os.urandom(32)
        wrapped = key_provider.wrap(data_key, CONTEXT)
        again = key_provider.rewrap(wrapped, CONTEXT)
        assert again.version == key_provider.current_version()
        assert key_provider.unwrap(again, CONTEXT) == data_key


class VersionedKeyProviderContract(KeyProviderContract):
    """Rotation and crypto-shredding, for providers that manage their versions."""

    @pytest.fixture
    def versioned(self, key_provider: KeyProvider) -> VersionedKeyProvider:
        assert key_provider.supports_rotation
        return cast(VersionedKeyProvider, key_provider)

    def test_a_new_kek_has_one_live_version_and_create_is_idempotent(
        self, versioned: VersionedKeyProvider
    ) -> None:
        assert versioned.current_version() == 1
        assert versioned.versions() == {1: "live"}
        assert versioned.rotation_pending() is None
        assert versioned.create() is False
        assert versioned.versions() == {1: "live"}

    def test_rotation_makes_a_new_current_version_once_and_old_wraps_still_open(
        self, versioned: VersionedKeyProvider
    ) -> None:
        data_key = os.urandom(32)
        old = versioned.wrap(data_key, CONTEXT)
        assert versioned.begin_rotation() == 2
        assert versioned.current_version() == 2
        assert versioned.rotation_pending() == 2
        assert versioned.begin_rotation() == 2  # resumed, not a third version
        assert versioned.unwrap(old, CONTEXT) == data_key
        new = versioned.rewrap(old, CONTEXT)
        assert new.version == 2 and versioned.unwrap(new, CONTEXT) == data_key
        assert versioned.wrap(data_key, CONTEXT).version == 2
        versioned.finish_rotation()
        assert versioned.rotation_pending() is None
        assert versioned.versions() == {1: "live", 2: "live"}
        assert versioned.begin_rotation() == 3

    def test_another_handle_follows_a_rotation_at_once(
        self, versioned: VersionedKeyProvider, key_provider_factory: Factory
    ) -> None:
        worker = key_provider_factory()
        assert worker.wrap(os.urandom(32), CONTEXT).version == 1  # it has looked once
        versioned.begin_rotation()
        versioned.finish_rotation()
        assert worker.current_version() == 2
        assert worker.wrap(os.urandom(32), CONTEXT).version == 2

    def test_destroying_a_version_shreds_what_only_it_wraps(
        self, versioned: VersionedKeyProvider, key_provider_factory: Factory
    ) -> None:
        kept, shredded = os.urandom(32), os.urandom(32)
        rewrapped = versioned.wrap(kept, CONTEXT)
        only_v1 = versioned.wrap(shredded, CONTEXT)
        versioned.begin_rotation()
        rewrapped = versioned.rewrap(rewrapped, CONTEXT)
        versioned.finish_rotation()
        worker = key_provider_factory()
        assert worker.unwrap(only_v1, CONTEXT) == shredded  # the worker has used v1
        versioned.destroy_version(1)
        for handle in (versioned, worker, key_provider_factory()):
            with pytest.raises(NotFoundError, match="version 1 was destroyed") as raised:
                handle.unwrap(only_v1, CONTEXT)
            assert "crypto-shredded" in raised.value.headline
            with pytest.raises(NotFoundError, match="version 1 was destroyed"):
                handle.rewrap(only_v1, CONTEXT)
            assert handle.unwrap(rewrapped, CONTEXT) == kept
        states = versioned.versions()
        assert states[1].startswith("destroyed") and states[2] == "live"
        assert versioned.begin_rotation() == 3  # a destroyed number is never reused

    def test_the_current_version_and_unknown_ones_cannot_be_destroyed(
        self, versioned: VersionedKeyProvider
    ) -> None:
        with pytest.raises(InvalidInputError, match="current version"):
            versioned.destroy_version(1)
        with pytest.raises(NotFoundError, match="no live version 7"):
            versioned.destroy_version(7)
        versioned.begin_rotation()
        with pytest.raises(InvalidInputError, match="current version"):
            versioned.destroy_version(2)  # current while the rotation is unfinished
        versioned.finish_rotation()
        versioned.destroy_version(1)
        with pytest.raises(NotFoundError, match="no live version 1"):
            versioned.destroy_version(1)
        assert versioned.current_version() == 2
