"""Pii feature values sealed in online stores, or refused, per ``security.online_pii``.

An online store is a cache that operators read, back up and replicate (Redis keeps it in
memory, in clear). So the values of a feature view whose data is pii (its own
classification, its sources' or anything upstream, :mod:`ghaf.features.residency`) are
written sealed: each value is encrypted with AES-256-GCM under a data key of that view
in that store, bound to the view and feature (a value copied to another feature or view
does not open). Entity keys stay in clear: lookups need them. ``security.online_pii =
"refuse"`` refuses to materialize such views instead.

The data key is an artifact in the encrypted artifact store: the home's KEK wraps it,
``ghaf keys rotate`` re-wraps it, and destroying a KEK version shreds it. A
:class:`~ghaf.features.tables.SealingKeyRow` names it per (store, view); the row's
presence says the view is stored sealed there. A view that becomes pii, or stops being
pii, is rewritten whole, so no value stays in a form the policy no longer allows.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from typing import Any

import orjson
import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from ghaf.data.residency import Tags
from ghaf.errors import ConfigError, IntegrityError, PolicyViolationError
from ghaf.features.base import ViewLayout, stored_form
from ghaf.features.residency import strongest_classification
from ghaf.features.tables import SealingKeyRow
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.encrypted_store import EncryptedArtifactStore
from ghaf.security.identity import Actor

SEALED_PREFIX = "gs1:"
"""How a sealed value starts: version 1 (AES-256-GCM, 12-byte nonce, base64)."""
_NONCE = 12
_KEY_BYTES = 32


class StaleSealingError(Exception):
    """What was read does not match the sealing state this reader holds (re-read it)."""


class Sealer:
    """Seals and opens the values of one view with its data key."""

    def __init__(self, view: str, key: bytes) -> None:
        self.view = view
        self._aead = AESGCM(key)
        self._aad: dict[str, bytes] = {}

    def _context(self, feature: str) -> bytes:
        aad = self._aad.get(feature)
        if aad is None:
            aad = self._aad[feature] = orjson.dumps(["ghaf-online", self.view, feature])
        return aad

    def seal(self, feature: str, value: Any) -> str | None:
        """``value`` (JSON-able, as the store would keep it) sealed; None stays None."""
        if value is None:
            return None
        nonce = os.urandom(_NONCE)
        blob = nonce + self._aead.encrypt(nonce, orjson.dumps(value), self._context(feature))
        return SEALED_PREFIX + base64.b64encode(blob).decode("ascii")

    def unseal(self, feature: str, token: Any) -> Any:
        """The value ``token`` seals.

        Raises:
            StaleSealingError: ``token`` is not a sealed value.
            IntegrityError: it is, but does not open under this view's key and feature.
        """
        if token is None:
            return None
        if type(token) is not str or not token.startswith(SEALED_PREFIX):
            raise StaleSealingError(feature)
        try:
            blob = base64.b64decode(token[len(SEALED_PREFIX) :], validate=True)
            plain = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], self._context(feature))
        except (binascii.Error, InvalidTag, ValueError) as exc:
            raise IntegrityError(
                f"a sealed online value of feature {self.view}:{feature} does not open "
                "under the view's key (it was altered, or copied from another feature)",
                hint=f"rewrite the view: ghaf features materialize {self.view} --full",
            ) from exc
        return orjson.loads(plain)

    def seal_rows(self, layout: ViewLayout, rows: pa.Table) -> tuple[ViewLayout, pa.Table]:
        """The layout and rows to write: every feature column sealed, as strings."""
        for name, dtype in layout.features:
            values = stored_form(rows.column(name), dtype).to_pylist()
            sealed = pa.array([self.seal(name, v) for v in values], pa.string())
            rows = rows.set_column(rows.schema.get_field_index(name), name, sealed)
        return sealed_layout(layout), rows

    def unseal_table(self, layout: ViewLayout, table: pa.Table) -> pa.Table:
        """``table`` read with :func:`sealed_layout` (``read_all``), features opened."""
        for name, dtype in layout.features:
            values = [self.unseal(name, v) for v in table.column(name).to_pylist()]
            kind = pa.int64() if dtype == "timestamp" else None
            column = pa.array(values, kind)
            table = table.set_column(table.schema.get_field_index(name), name, column)
        return table


@functools.lru_cache(maxsize=1024)
def sealed_layout(layout: ViewLayout) -> ViewLayout:
    """``layout`` as a sealed view is stored: every feature a string (its sealed form)."""
    return ViewLayout(
        layout.name,
        layout.join_keys,
        layout.key_dtypes,
        tuple((name, "string") for name, _ in layout.features),
    )


def is_pii(tags: Tags) -> bool:
    """Whether data carrying ``tags`` is pii (sealed or refused in online stores)."""
    return strongest_classification(tags) == "pii"


def _key_row(session: Session, store_url: str, view: str) -> SealingKeyRow | None:
    return session.execute(
        select(SealingKeyRow).where(
            SealingKeyRow.store_url == store_url, SealingKeyRow.view == view
        )
    ).scalar_one_or_none()


def sealer_for_write(
    platform: Platform,
    actor: Actor,
    session: Session,
    *,
    store_url: str,
    view: str,
    tags: Tags,
) -> tuple[Sealer | None, bool]:
    """How a materialization writes ``view`` to the store: ``(sealer, rewrite)``.

    ``sealer`` is None for a view stored in clear; ``rewrite`` is True when the view
    changed between sealed and clear, so every stored row must be replaced. The key row
    is added to ``session`` (the materialization's transaction).

    Raises:
        PolicyViolationError: the view is pii and ``security.online_pii`` is ``refuse``.
        ConfigError: the view is pii and artifact encryption is off (the key would be
            stored in clear).
    """
    row = _key_row(session, store_url, view)
    if not is_pii(tags):
        if row is None:
            return None, False
        session.delete(row)  # declassified: the view is rewritten in clear
        return None, True
    if platform.settings.security.online_pii == "refuse":
        origins = "; ".join(tags.get("pii", []))
        raise PolicyViolationError(
            f"feature view {view!r} holds pii ({origins}) and security.online_pii = "
            "'refuse' keeps pii out of online stores",
            hint="serve it from the offline store, or set security.online_pii = 'encrypt'",
        )
    if row is not None:
        return Sealer(view, platform.artifacts.read_bytes(row.key_digest)), False
    if not isinstance(platform.artifacts, EncryptedArtifactStore):
        raise ConfigError(
            f"feature view {view!r} holds pii and cannot be sealed in the online store: "
            "security.encrypt_artifacts is off, so its key would be stored in clear",
            hint="turn security.encrypt_artifacts on, or set security.online_pii = 'refuse'",
        )
    key = os.urandom(_KEY_BYTES)
    info = platform.artifacts.put_bytes(key)
    session.add(
        SealingKeyRow(
            store_url=store_url,
            view=view,
            key_digest=info.digest,
            created_by=actor.name,
            created_at=utcnow(),
        )
    )
    return Sealer(view, key), True


def sealer_for_read(platform: Platform, store_url: str, view: str) -> Sealer | None:
    """The sealer of ``view`` in the store at ``store_url``; None when it is stored in clear."""
    with platform.read_session() as session:
        row = _key_row(session, store_url, view)
        digest = None if row is None else row.key_digest
    if digest is None:
        return None
    return Sealer(view, platform.artifacts.read_bytes(digest))


def holds_sealed(rows: list[Any]) -> bool:
    """Whether rows read as clear hold a sealed value (the view was sealed meanwhile)."""
    return any(
        type(value) is str and value.startswith(SEALED_PREFIX)
        for row in rows
        if row is not None
        for value in row
    )
