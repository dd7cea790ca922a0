"""The remote client's governance calls: keys, code/release/gate policies, principals
and groups, role bindings and tokens, break glass, audit checkpoints and export."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from ghaf.client.session import Session

EXPORT_PAGE = 10_000
"""Audit records fetched per request by :meth:`GovernanceCalls.audit_records`."""


def _seg(value: str) -> str:
    """``value`` as one path segment (a name never reaches another route)."""
    return quote(value, safe="")


class GovernanceCalls(Session):
    """Governance calls of :class:`~ghaf.client.http.Client`."""

    # Keys: the KEK lives on the server; only versions and fingerprints travel.

    def keys(self) -> dict[str, Any]:
        """The KEK's versions and the trusted public keys (never key material)."""
        return dict(self.get("/keys"))

    def rotate_keys(self) -> dict[str, Any]:
        """Make a new KEK version current and re-wrap every artifact header."""
        return dict(self.request("POST", "/keys/rotate"))

    def destroy_key_version(self, version: int) -> list[str]:
        """Delete a KEK version; the artifacts that became unreadable."""
        return list(self.request("DELETE", f"/keys/versions/{int(version)}")["shredded"])

    def trust_key(self, pem: bytes | str) -> str:
        """Accept model signatures made with this PEM public key; its fingerprint."""
        text = pem.decode() if isinstance(pem, bytes) else pem
        return str(self.post("/keys/trusted", {"pem": text})["fingerprint"])

    # Release and code policies of a project.

    def release_policy(self, project: str) -> dict[str, Any]:
        return dict(self.get(f"/projects/{_seg(project)}/release-policy"))

    def set_release_policy(self, project: str, text: str) -> dict[str, Any]:
        return dict(self.put(f"/projects/{_seg(project)}/release-policy", {"text": text}))

    def code_policy(self, project: str) -> dict[str, Any]:
        return dict(self.get(f"/projects/{_seg(project)}/code-policy"))

    def change_code_policy(
        self,
        project: str,
        *,
        allow: Sequence[str] = (),
        revoke: Sequence[str] = (),
        revoke_all: bool = False,
        reason: str = "",
    ) -> dict[str, Any]:
        body = {
            "allow": list(allow),
            "revoke": list(revoke),
            "revoke_all": revoke_all,
            "reason": reason,
        }
        return dict(self.request("PATCH", f"/projects/{_seg(project)}/code-policy", json=body))

    # Gate policies.

    def gate_policies(self) -> list[dict[str, Any]]:
        return list(self.get("/gate-policies")["policies"])

    def gate_policy(self, ref: str) -> dict[str, Any]:
        return dict(self.get(f"/gate-policies/{_seg(ref)}"))

    def add_gate_policy(
        self,
        text: str,
        *,
        project: str,
        name: str | None = None,
        model: str | None = None,
        attach_project: bool = False,
    ) -> dict[str, Any]:
        """Store ``text`` as the next version of a policy added in ``project``."""
        body = {
            "text": text,
            "project": project,
            "name": name,
            "model": model,
            "attach_project": attach_project,
        }
        return dict(self.post("/gate-policies", body))

    def attach_gate_policy(
        self, ref: str, *, model: str | None = None, project: str | None = None
    ) -> dict[str, Any]:
        body = {"model": model, "project": project}
        return dict(self.post(f"/gate-policies/{_seg(ref)}/attachments", body))

    # Principals, groups, role bindings, tokens.

    def principals(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(self.get("/principals", kind=kind)["principals"])

    def create_principal(
        self, name: str, *, kind: str = "user", description: str = ""
    ) -> dict[str, Any]:
        body = {"name": name, "kind": kind, "description": description}
        return dict(self.post("/principals", body))

    def add_group_member(self, group: str, member: str) -> dict[str, Any]:
        return dict(self.post(f"/groups/{_seg(group)}/members", {"member": member}))

    def bindings(
        self, *, project: str | None = None, subject: str | None = None
    ) -> list[dict[str, Any]]:
        return list(self.get("/roles", project=project, subject=subject)["bindings"])

    def bind_role(
        self, subject: str, role: str, *, project: str, effect: str = "allow"
    ) -> dict[str, Any]:
        body = {"subject": subject, "role": role, "project": project, "effect": effect}
        return dict(self.post("/roles", body))

    def unbind_role(self, subject: str, role: str, *, project: str, effect: str = "allow") -> None:
        params = {"subject": subject, "role": role, "project": project, "effect": effect}
        self.request("DELETE", "/roles", params=params)

    def tokens(
        self, *, project: str | None = None, principal: str | None = None
    ) -> list[dict[str, Any]]:
        return list(self.get("/tokens", project=project, principal=principal)["tokens"])

    def create_token(
        self,
        principal: str,
        *,
        project: str,
        roles: Sequence[str] = (),
        expires_in_days: float = 30.0,
        description: str = "",
    ) -> dict[str, Any]:
        """Mint a token; ``token`` (its secret) is in this answer only, ``info`` the rest."""
        body = {
            "principal": principal,
            "project": project,
            "roles": list(roles),
            "expires_in_days": expires_in_days,
            "description": description,
        }
        return dict(self.post("/tokens", body))

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return dict(self.request("DELETE", f"/tokens/{_seg(token_id)}"))

    # Break glass.

    def request_break_glass(
        self,
        name: str,
        version: int,
        *,
        reason: str,
        alias: str | None = None,
        stage: str | None = None,
    ) -> dict[str, Any]:
        """Ask to put ``name:version`` on ``alias`` (or ``stage``) past the release policy."""
        body = {"version": version, "reason": reason, "alias": alias, "stage": stage}
        return dict(self.post(f"/models/{_seg(name)}/break-glass", body))

    def break_glass_requests(self, *, pending_only: bool = False) -> list[dict[str, Any]]:
        return list(self.get("/break-glass", pending=pending_only)["requests"])

    def confirm_break_glass(self, request_id: int) -> dict[str, Any]:
        """Carry out a pending request as the second person; the version it moved."""
        return dict(self.request("POST", f"/break-glass/{int(request_id)}/confirm"))

    # Audit.

    def audit_checkpoint(self) -> dict[str, Any]:
        """Sign a checkpoint over every record so far (home-wide auditors)."""
        return dict(self.request("POST", "/audit/checkpoints"))

    def verify_audit(self) -> dict[str, Any]:
        """The whole trail verified against its signed checkpoints (home-wide auditors)."""
        return dict(self.get("/audit/verify"))

    def audit_sinks(self) -> dict[str, Any]:
        """Each audit log sink's cursor, lag and last error (home-wide auditors, SREs)."""
        return dict(self.get("/audit/sinks"))

    def ship_audit(self) -> dict[str, Any]:
        """Deliver what each audit log sink is behind by, now (home-wide auditors)."""
        return dict(self.request("POST", "/audit/sinks/ship"))

    def audit_lines(self, project: str, *, after: int = 0) -> Iterator[bytes]:
        """A project's audit records as JSON lines (hashes included, as ``ghaf audit
        export`` writes them), in sequence order, fetched a page at a time."""
        while True:
            params = {"project": project, "after": after, "limit": EXPORT_PAGE}
            page = self.send("GET", "/audit/records", params=params).content.splitlines()
            for line in page:
                yield line + b"\n"
            if len(page) < EXPORT_PAGE:
                return
            after = int(orjson.loads(page[-1])["seq"])

    def audit_records(self, project: str, *, after: int = 0) -> Iterator[dict[str, Any]]:
        """A project's audit records, decoded (see :meth:`audit_lines`)."""
        for line in self.audit_lines(project, after=after):
            yield orjson.loads(line)
