"""The compliance report: ISO/IEC 27001:2022 Annex A controls Ghaf serves, each mapped to
live evidence read from the home, with a status (evidence present, or a gap).

Generating it is a read, authorized as ``compliance.read`` home-wide (project ``'*'``:
auditors and project admins bound on every project; the home's owner holds both). A
refusal is audited; an allowed report is not, as reads of the audit log are not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from ghaf.access.authorize import authorize_read
from ghaf.compliance.evidence import (
    Window,
    access_evidence,
    change_evidence,
    crypto_evidence,
    logging_evidence,
    privacy_evidence,
    residency_evidence,
    section,
)
from ghaf.compliance.sbom import environment_sbom
from ghaf.errors import InvalidInputError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor

SCHEMA = "ghaf.compliance.report/1"
"""The JSON document's ``schema``: a new field keeps it, a changed meaning bumps it."""
ACTION = "compliance.read"
RESOURCE = "compliance:report"
HOME_WIDE = "*"
STANDARD = "ISO/IEC 27001:2022 Annex A"

Gather = Callable[[Platform, Session, Window], dict[str, Any]]

CONTROLS: tuple[tuple[str, tuple[str, ...], str, Gather | None], ...] = (
    (
        "access_control",
        ("A.5.15", "A.5.18", "A.8.2"),
        "Access control, access rights and privileged access rights",
        access_evidence,
    ),
    ("change_management", ("A.8.32",), "Change management", change_evidence),
    ("cryptography", ("A.8.24",), "Use of cryptography", crypto_evidence),
    (
        "logging_monitoring",
        ("A.8.15", "A.8.16"),
        "Logging and monitoring activities",
        logging_evidence,
    ),
    ("privacy", ("A.5.34",), "Privacy and protection of PII", privacy_evidence),
    (
        "supplier_security",
        ("A.5.21", "A.5.23"),
        "ICT supply chain (SBOM) and use of cloud services",
        None,
    ),
    ("data_residency", ("A.5.31",), "Data residency (UAE): legal and regulatory requirements",
     residency_evidence),
)  # fmt: skip
"""Each control section: its id, the Annex A controls it serves, its title, its gatherer
(the supplier section is built here: it reads the environment, not the home)."""


def _scheme(url: str | None, default: str) -> str:
    """The backend a URL names, never its credentials or host."""
    return urlsplit(url).scheme.split("+")[0] if url else default


def supplier_evidence(platform: Platform, now: datetime) -> dict[str, Any]:
    """A.5.21, A.5.23: the CycloneDX SBOM of the running environment and the services the
    home uses (by kind and region, never their addresses or credentials)."""
    settings = platform.settings
    sbom = environment_sbom(now)
    services = {
        "metadata": _scheme(settings.resolved_metadata_url, "sqlite"),
        "artifacts": _scheme(settings.artifact_url, "local"),
        "artifact_region": settings.artifact_region,
        "online_store": _scheme(settings.online_store_url, "sqlite"),
        "event_bus": _scheme(settings.event_bus_url, "memory"),
        "key_provider": settings.keys.provider,
        "executor": settings.executor,
    }
    gaps = [] if sbom["components"] else ["no installed distribution found for the SBOM"]
    evidence = {
        "services": services,
        "sbom_summary": {
            "components": len(sbom["components"]),
            "with_license": sum(1 for c in sbom["components"] if c.get("licenses")),
            "serial_number": sbom["serialNumber"],
        },
        "sbom": sbom,
    }
    return section(evidence, gaps)


def build_report(
    platform: Platform, *, since: datetime, until: datetime, generated_by: str
) -> dict[str, Any]:
    """The report's document (no authorization: :func:`compliance_report` decides).

    Raises:
        InvalidInputError: ``since`` is after ``until``.
    """
    if since > until:
        raise InvalidInputError(
            f"--since {since.isoformat()} is after --until {until.isoformat()}",
            hint="give a start before the end, e.g. --since 90d",
        )
    window = Window(since, until)
    controls = []
    with platform.read_session() as session:
        for key, ids, title, gather in CONTROLS:
            found = (
                supplier_evidence(platform, until)
                if gather is None
                else gather(platform, session, window)
            )
            controls.append({"id": key, "controls": list(ids), "title": title, **found})
    gaps = [c["id"] for c in controls if c["status"] == "gap"]
    return {
        "schema": SCHEMA,
        "standard": STANDARD,
        "generated_at": utcnow(),
        "generated_by": generated_by,
        "window": {"since": since, "until": until},
        "summary": {
            "controls": len(controls),
            "evidence": len(controls) - len(gaps),
            "gaps": gaps,
        },
        "controls": controls,
    }


def compliance_report(
    platform: Platform, actor: Actor, *, since: datetime, until: datetime | None = None
) -> dict[str, Any]:
    """The compliance report for ``actor``, if home-wide ``compliance.read`` allows it.

    Raises:
        PermissionDeniedError: the actor may not read it (audited as denied).
        InvalidInputError: a window that ends before it starts.
    """
    authorize_read(platform, actor, ACTION, RESOURCE, HOME_WIDE)
    return build_report(platform, since=since, until=until or utcnow(), generated_by=actor.name)
