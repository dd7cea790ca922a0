"""Live evidence for each control, read from the home: bindings, tokens, the audit trail,
keys, checkpoints, shipping cursors, retention runs, certificates and settings.

Each ``*_evidence`` function returns one control section: ``status`` (``evidence`` or
``gap``), ``gaps`` (why, one line each, naming the fix), ``notes`` (review items that
are not gaps) and ``evidence`` (what was found). Events are those of the window; states
(bindings, tokens, keys) are as they are now.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from ghaf.access.audit import verify_trail
from ghaf.access.bindings import list_bindings
from ghaf.access.keyring import describe_keys
from ghaf.access.principals import list_principals
from ghaf.access.residency import RESIDENCY_ACTION
from ghaf.access.tokens import list_tokens
from ghaf.data.store import get_dataset, list_datasets
from ghaf.errors import ConfigError, GhafError
from ghaf.platform import Platform
from ghaf.privacy.erasure import list_certificates
from ghaf.privacy.retention import list_retention_runs, retention_rules
from ghaf.registry.break_glass import BREAK_GLASS_ACTIONS, list_break_glass
from ghaf.security.audit_tables import AuditRecordRow
from ghaf.security.checkpoints import last_checkpoint
from ghaf.security.rbac import SENSITIVE_TAGS
from ghaf.security.residency import decide_residency
from ghaf.shipping.shipper import sink_status
from ghaf.spine import VIA_TOKEN

LIMIT = 200
"""Records listed per kind of event (the newest); ``total`` counts them all."""
STALE = timedelta(days=90)
"""An active token unused for this long is a review item."""
PRIVILEGED_ROLES = ("project_admin", "key_custodian", "backup_operator", "privacy_officer")
"""Roles that change who may do what, hold the keys, copy or destroy data (A.8.2)."""
APPROVALS = ("model.approve", "model.reject")
PROMOTIONS = (
    "model.promote",
    "model.alias",
    "model.alias_delete",
    "deployment.create",
    "deployment.update",
    "deployment.rollback",
)
POLICY_CHANGES = ("release_policy.set", "gate_policy.add", "gate_policy.attach", "code_policy.set")
ACCESS_CHANGES = (
    "role.bind",
    "role.unbind",
    "token.create",
    "token.revoke",
    "principal.create",
    "group.add_member",
)


@dataclass(frozen=True)
class Window:
    """The period whose events the report shows."""

    since: datetime
    until: datetime


def section(
    evidence: dict[str, Any], gaps: list[str], notes: list[str] | None = None
) -> dict[str, Any]:
    """A control's section: its status follows from whether any gap was found."""
    return {
        "status": "gap" if gaps else "evidence",
        "gaps": gaps,
        "notes": notes or [],
        "evidence": evidence,
    }


def _record(row: AuditRecordRow) -> dict[str, Any]:
    details = orjson.loads(row.details or "{}")
    return {
        "seq": row.seq,
        "ts": row.ts,
        "actor": row.actor,
        "action": row.action,
        "resource": row.resource,
        "project": row.project,
        "outcome": row.outcome,
        "details": details,
    }


def records(
    session: Session,
    window: Window,
    actions: Collection[str],
    *,
    outcome: str | None = None,
) -> dict[str, Any]:
    """``{"total", "records"}``: audit records of ``actions`` in the window, newest first."""
    where = [
        AuditRecordRow.action.in_(sorted(actions)),
        AuditRecordRow.ts >= window.since,
        AuditRecordRow.ts <= window.until,
    ]
    if outcome is not None:
        where.append(AuditRecordRow.outcome == outcome)
    total = session.execute(select(func.count()).select_from(AuditRecordRow).where(*where))
    rows = session.execute(
        select(AuditRecordRow).where(*where).order_by(AuditRecordRow.seq.desc()).limit(LIMIT)
    ).scalars()
    return {"total": int(total.scalar_one()), "records": [_record(r) for r in rows]}


def _last_seen(session: Session) -> dict[str, datetime]:
    rows = session.execute(
        select(AuditRecordRow.actor, func.max(AuditRecordRow.ts)).group_by(AuditRecordRow.actor)
    )
    return {str(actor): ts for actor, ts in rows}


def _via_token(session: Session) -> ColumnElement[Any]:
    """The ``via_token`` of a record's details, extracted by the database."""
    if session.get_bind().dialect.name == "postgresql":
        document: Any = cast(AuditRecordRow.details, JSONB)
        extracted: ColumnElement[Any] = document[VIA_TOKEN].astext
    else:
        extracted = func.json_extract(AuditRecordRow.details, f"$.{VIA_TOKEN}")
    return extracted


def _token_uses(session: Session) -> dict[str, dict[str, Any]]:
    """Each token's newest record made with it (``via_token``) and its newest refusal.

    One grouped scan in the database: only the newest record of each token comes back.
    """
    uses: dict[str, dict[str, Any]] = {}
    token = _via_token(session)
    newest = (
        select(token.label("token"), func.max(AuditRecordRow.seq).label("seq"))
        .where(AuditRecordRow.details.contains(f'"{VIA_TOKEN}":'))
        .group_by(token)
        .subquery()
    )
    made = session.execute(
        select(newest.c.token, AuditRecordRow.ts, AuditRecordRow.source).join(
            AuditRecordRow, AuditRecordRow.seq == newest.c.seq
        )
    )
    for token_id, ts, source in made:
        if isinstance(token_id, str):
            uses[token_id] = {"last_used_at": ts, "last_used_from": source}
    refused = session.execute(
        select(AuditRecordRow.resource, func.max(AuditRecordRow.ts))
        .where(AuditRecordRow.resource.startswith("credential:token:"))
        .group_by(AuditRecordRow.resource)
    )
    for resource, ts in refused:
        token_id = resource.removeprefix("credential:token:")
        uses.setdefault(token_id, {})["last_refused_at"] = ts
    return uses


def access_evidence(platform: Platform, session: Session, window: Window) -> dict[str, Any]:
    """A.5.15, A.5.18, A.8.2: who holds which role where; each token and its last use;
    principals never seen (an access review); access changes and refusals in the window."""
    now = window.until
    bindings = [asdict(b) for b in list_bindings(platform)]
    seen = _last_seen(session)
    uses = _token_uses(session)
    tokens: list[dict[str, Any]] = []
    for info in list_tokens(platform):
        state = (
            "revoked"
            if info.revoked_at is not None
            else ("expired" if info.expires_at <= now else "active")
        )
        use = uses.get(info.token_id, {})
        tokens.append(
            {
                "token_id": info.token_id,
                "principal": info.principal,
                "project": info.project,
                "roles": list(info.roles),
                "description": info.description,
                "created_by": info.created_by,
                "created_at": info.created_at,
                "expires_at": info.expires_at,
                "revoked_at": info.revoked_at,
                "state": state,
                "last_used_at": use.get("last_used_at"),
                "last_used_from": use.get("last_used_from"),
                "last_refused_at": use.get("last_refused_at"),
            }
        )
    principals = [
        {
            "name": p.name,
            "kind": p.kind,
            "description": p.description,
            "created_by": p.created_by,
            "created_at": p.created_at,
            "members": list(p.members),
            "last_seen_at": seen.get(p.name),
        }
        for p in list_principals(platform)
    ]
    never_seen = [p["name"] for p in principals if p["kind"] != "group" and not p["last_seen_at"]]
    registered = {p["name"] for p in principals}
    owner = platform.home_owner()
    bound = {b["subject"] for b in bindings}
    unregistered = sorted(
        s for s in bound - registered if not s.startswith("group:") and s != owner
    )
    notes = [f"principal {name} has never acted (no audit record)" for name in never_seen]
    for token in tokens:
        if token["state"] != "active":
            continue
        if token["last_used_at"] is None:
            notes.append(f"active token {token['token_id']} ({token['principal']}) never used")
        elif now - token["last_used_at"] > STALE:
            notes.append(
                f"active token {token['token_id']} ({token['principal']}) unused for over "
                f"{STALE.days} days"
            )
    gaps = [] if bindings else ["no role bindings: nobody may act (run ghaf init)"]
    evidence = {
        "owner": owner,
        "bindings": bindings,
        "privileged_bindings": [
            b for b in bindings if b["role"] in PRIVILEGED_ROLES and b["effect"] == "allow"
        ],
        "tokens": tokens,
        "principals": principals,
        "never_seen": never_seen,
        "bound_but_unregistered": unregistered,
        "actors_seen": [
            {"actor": actor, "last_seen_at": ts}
            for actor, ts in sorted(seen.items())
            if ts >= window.since
        ],
        "access_changes": records(session, window, ACCESS_CHANGES),
        "denials": _denials(session, window),
    }
    return section(evidence, gaps, notes)


def _denials(session: Session, window: Window) -> dict[str, Any]:
    where = [
        AuditRecordRow.outcome == "denied",
        AuditRecordRow.ts >= window.since,
        AuditRecordRow.ts <= window.until,
    ]
    rows = session.execute(
        select(AuditRecordRow.action, func.count()).where(*where).group_by(AuditRecordRow.action)
    )
    by_action = {action: int(n) for action, n in rows}
    return {"total": sum(by_action.values()), "by_action": dict(sorted(by_action.items()))}


def change_evidence(platform: Platform, session: Session, window: Window) -> dict[str, Any]:
    """A.8.32: approvals, promotions and deployments, release-policy decisions (changes
    the policy refused included) and break-glass events."""
    requests = [
        {**asdict(r), "ref": f"{r.model}:{r.version}"}
        for r in list_break_glass(platform)
        if window.since <= r.requested_at <= window.until
    ]
    evidence: dict[str, Any] = {
        "approvals": records(session, window, APPROVALS, outcome="allowed"),
        "promotions": records(session, window, PROMOTIONS, outcome="allowed"),
        "refused_changes": records(session, window, (*PROMOTIONS, *APPROVALS), outcome="denied"),
        "policy_changes": records(session, window, POLICY_CHANGES),
        "break_glass": records(session, window, BREAK_GLASS_ACTIONS),
        "break_glass_requests": requests,
    }
    gaps = []
    changes = evidence["promotions"]["total"] + evidence["break_glass"]["total"]
    if evidence["approvals"]["total"] == 0 and changes == 0:
        gaps.append(
            "no approvals, promotions or break-glass events in the window: no change to show "
            "(widen --since, or approve and promote through ghaf models)"
        )
    notes = []
    if evidence["break_glass"]["total"]:
        notes.append(
            f"{evidence['break_glass']['total']} break-glass record(s) in the window: "
            "each should have a post-incident review"
        )
    return section(evidence, gaps, notes)


def crypto_evidence(platform: Platform, session: Session, window: Window) -> dict[str, Any]:
    """A.8.24: the key provider, the KEK's versions, rotations and shredded versions."""
    settings = platform.settings
    keys = settings.keys
    gaps: list[str] = []
    notes: list[str] = []
    keyring: dict[str, Any] | None = None
    if not settings.security.encrypt_artifacts:
        gaps.append(
            "artifacts are stored unencrypted (security.encrypt_artifacts is false): set it true"
        )
    else:
        try:
            found = describe_keys(platform)
        except ConfigError as exc:
            gaps.append(f"{exc.headline}: Ghaf cannot show the KEK's versions ({exc.hint})")
        else:
            keyring = {
                "kek": found.kek,
                "current_version": next((v.version for v in found.versions if v.current), None),
                "versions": [asdict(v) for v in found.versions],
                "rotation_pending": found.rotation_pending,
                "trusted_signing_keys": [asdict(t) for t in found.trusted],
            }
    last_rotation = session.execute(
        select(func.max(AuditRecordRow.ts)).where(
            AuditRecordRow.action == "keys.rotate", AuditRecordRow.outcome == "allowed"
        )
    ).scalar_one()
    if keyring is not None and keyring["rotation_pending"] is not None:
        gaps.append(
            f"a rotation to version {keyring['rotation_pending']} did not finish: "
            "run ghaf keys rotate again"
        )
    if last_rotation is None:
        notes.append("the key-encryption key was never rotated (ghaf keys rotate)")
    shredded = [v for v in (keyring or {}).get("versions", []) if v["state"] != "live"]
    evidence = {
        "provider": keys.provider,
        "kms_key_id": keys.kms_key_id if keys.provider == "kms" else None,
        "kms_region": keys.kms_region if keys.provider == "kms" else None,
        "kek_source": _kek_source(platform),
        "encrypt_artifacts": settings.security.encrypt_artifacts,
        "keyring": keyring,
        "last_rotation_at": last_rotation,
        "rotations": records(session, window, ("keys.rotate",)),
        "shredded_versions": shredded,
        "shredding": records(session, window, ("keys.destroy_version",)),
        "trust_changes": records(session, window, ("keys.trust",)),
    }
    return section(evidence, gaps, notes)


def _kek_source(platform: Platform) -> str:
    settings = platform.settings
    if settings.keys.provider == "kms":
        return f"AWS KMS ({settings.keys.kms_key_id})"
    if settings.security.kek is not None:
        return "settings (security.kek)"
    return "key file (security.kek_file)"


def logging_evidence(platform: Platform, session: Session, window: Window) -> dict[str, Any]:
    """A.8.15, A.8.16: the audit chain verified, its last checkpoint, shipping to the log
    system (sinks, lag, last error) and what the window holds."""
    report = verify_trail(platform)
    checkpoint = last_checkpoint(platform.settings)
    gaps: list[str] = []
    notes: list[str] = []
    if report.status == "broken":
        gaps.append(f"{report.headline} (ghaf audit verify names the fix)")
    elif report.status == "pending":
        notes.append("the newest records are not covered by a signed checkpoint yet")
    if checkpoint is None:
        gaps.append("no signed checkpoint: run ghaf audit checkpoint")
    sinks = [s.to_json() for s in sink_status(platform, now=window.until)]
    if not sinks:
        gaps.append(
            "audit shipping is not configured: the trail stays in the home "
            "(set audit_shipping.sinks; see the audit shipping guide)"
        )
    for sink in sinks:
        if sink["enabled"] and sink["attempts"]:
            gaps.append(
                f"sink {sink['sink']} is failing ({sink['attempts']} attempt(s)): "
                f"{sink['last_error']}"
            )
        elif not sink["enabled"]:
            notes.append(f"sink {sink['sink']} is disabled")
    in_window = session.execute(
        select(AuditRecordRow.outcome, func.count())
        .where(AuditRecordRow.ts >= window.since, AuditRecordRow.ts <= window.until)
        .group_by(AuditRecordRow.outcome)
    )
    evidence = {
        "audit_chain": report.to_json(),
        "last_checkpoint": None
        if checkpoint is None
        else {
            "size": checkpoint.size,
            "root": checkpoint.root,
            "head": checkpoint.head,
            "ts": checkpoint.ts,
            "key": checkpoint.key,
        },
        "shipping": {"configured": bool(sinks), "sinks": sinks},
        "records_in_window": {outcome: int(n) for outcome, n in sorted(in_window)},
    }
    return section(evidence, gaps, notes)


def _pii_datasets(platform: Platform) -> list[dict[str, Any]]:
    found = []
    for name in list_datasets(platform):
        try:
            latest = get_dataset(platform, name)
        except GhafError:
            continue  # gone between the two reads (an erasure)
        tagged = {c: t for c, t in latest.column_tags.items() if t in SENSITIVE_TAGS}
        if tagged:
            found.append(
                {
                    "dataset": latest.ref,
                    "columns": dict(sorted(tagged.items())),
                    "residency": latest.residency,
                    "created_at": latest.created_at,
                }
            )
    return found


def privacy_evidence(platform: Platform, session: Session, window: Window) -> dict[str, Any]:
    """A.5.34: retention rules and runs, erasure certificates, datasets holding pii."""

    def within(iso: str) -> bool:
        return window.since <= datetime.fromisoformat(iso) <= window.until

    runs = [r for r in list_retention_runs(platform, limit=1000) if within(r["ran_at"])]
    certificates = [c for c in list_certificates(platform, limit=1000) if within(c["issued_at"])]
    pii = _pii_datasets(platform)
    applied = [r for r in runs if not r["dry_run"]]
    gaps = []
    if not applied:
        gaps.append(
            "no retention run in the window: nothing shows that expired data is removed "
            "(ghaf retention run, or let ghaf server run it on its schedule)"
        )
    evidence = {
        "retention_rules": retention_rules(platform),
        "retention_runs": runs,
        "erasure_certificates": certificates,
        "pii_datasets": pii,
    }
    return section(evidence, gaps)


def residency_evidence(platform: Platform, session: Session, window: Window) -> dict[str, Any]:
    """Data residency (UAE): the policy, the home's regions, and refusals in the window."""
    settings = platform.settings
    policy = settings.security.residency
    regions = {
        "artifacts": settings.artifact_region,
        "online_store": settings.online_store_region or settings.artifact_region,
    }
    where = [
        AuditRecordRow.outcome == "denied",
        AuditRecordRow.ts >= window.since,
        AuditRecordRow.ts <= window.until,
        AuditRecordRow.details.contains("residency"),
    ]
    rows = session.execute(
        select(AuditRecordRow).where(*where).order_by(AuditRecordRow.seq.desc())
    ).scalars()
    refusals = []
    for row in rows:
        record = _record(row)
        details = record["details"]
        reason = str(details.get("reason") or details.get("error") or "")
        if (
            row.action == RESIDENCY_ACTION
            or "residency" in details
            or reason.startswith("residency")
        ):
            refusals.append({**record, "reason": reason})
    placement = {
        tag: {
            where: decide_residency(policy, [tag], region).allowed
            for where, region in regions.items()
        }
        for tag in sorted(policy)
    }
    gaps = []
    if "pii" not in policy:
        gaps.append(
            "no residency rule for pii: pii may be stored in any region "
            "(set security.residency.pii, e.g. ['ae-*'])"
        )
    evidence = {
        "policy": {tag: list(patterns) for tag, patterns in sorted(policy.items())},
        "regions": regions,
        "allowed_here": placement,
        "refusals": {"total": len(refusals), "records": refusals[:LIMIT]},
    }
    return section(evidence, gaps)
