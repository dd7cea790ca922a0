"""Checking an erasure certificate: its signature, its audit record, and the store today."""

from __future__ import annotations

from typing import Any

import orjson

from ghaf.data.base import parse_ref
from ghaf.data.store import get_dataset, version_parts
from ghaf.errors import GhafError
from ghaf.platform import Platform
from ghaf.privacy.certificates import check_signature, matches_subject
from ghaf.security.audit import export_records


def _audited(platform: Platform, body: dict[str, Any], digest: str) -> bool:
    resource = (
        f"subject:{body.get('subject', {}).get('key_column')}"
        if body.get("kind") == "subject"
        else f"dataset:{body.get('dataset')}"
    )
    with platform.read_session() as session:
        for line in export_records(session, resource=resource):
            record = orjson.loads(line)
            details = record.get("details") or {}
            if (
                record.get("outcome") == "allowed"
                and details.get("certificate") == body.get("id")
                and details.get("certificate_sha256") == digest
            ):
                return True
    return False


def _gone(platform: Platform, digest: str) -> bool:
    """Whether nothing in the store decrypts to ``digest`` any more (checked by trying)."""
    try:
        platform.artifacts.read_bytes(digest)
    except GhafError:
        return True
    return False


def _verifies(platform: Platform, node: str, digest: str) -> tuple[bool, str]:
    """Whether the rewritten version ``node`` is the one certified and reads, and why not."""
    try:
        name, version = parse_ref(node)
        recorded = get_dataset(platform, f"{name}:{version}")
        if recorded.digest != digest:
            return False, f"{node} is not the version certified (digest {recorded.digest[:16]})"
        parts = version_parts(platform, recorded)  # each part decrypts and verifies
        if not all(platform.artifacts.read_bytes(part.digest) for part in parts):
            return False, f"{node} is empty"
    except GhafError as exc:
        return False, f"{node} does not verify: {exc.headline}"
    return True, f"{node} verifies"


def verify_certificate(
    platform: Platform, document: dict[str, Any], *, value: str | None = None
) -> dict[str, Any]:
    """Every check of a certificate, each ``{"check", "ok", "detail"}``, and ``ok`` overall.

    Checks: the signature (a trusted key), the audit record carrying its digest, each
    destroyed artifact no longer decrypting, each rewritten version verifying, and
    (given ``value``) that the certificate is for that subject.

    Raises:
        InvalidInputError: the document is not a certificate.
    """
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail})

    try:
        digest = check_signature(platform.settings, document)
    except GhafError as exc:
        if exc.__class__.__name__ == "InvalidInputError":
            raise
        check("signature", False, exc.headline)
        return {"id": document["certificate"].get("id"), "ok": False, "checks": checks}
    body = document["certificate"]
    check("signature", True, f"signed by trusted key {str(document.get('key'))[:16]}")
    check(
        "audit",
        _audited(platform, body, digest),
        f"an allowed erasure.{body.get('kind')} record carries sha256 {digest[:16]}",
    )
    for entry in body.get("destroyed", []):
        check("destroyed", _gone(platform, entry["digest"]), f"{entry['node']} does not decrypt")
    for entry in body.get("rewritten", []):
        check("rewritten", *_verifies(platform, entry["to"], entry["digest"]))
    if value is not None and body.get("kind") == "subject":
        check("subject", matches_subject(body.get("subject", {}), value), "the value given")
    return {"id": body.get("id"), "ok": all(c["ok"] for c in checks), "checks": checks}
