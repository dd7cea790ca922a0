"""A CycloneDX 1.5 SBOM (JSON) of the running Python environment, from installed metadata.

Every installed distribution becomes a ``library`` component with its name, version,
``pkg:pypi`` purl, licenses where its metadata declares them and the dependencies it
declares that are installed. A distribution's ``RECORD`` lists the SHA-256 of each file
it installed; the component carries the SHA-256 of that manifest and its file count as
properties (``ghaf:record:sha256``, ``ghaf:record:files``): they pin every installed file
without listing thousands. ``hashes`` holds only what hashes the distribution's archive
itself (``direct_url.json``'s ``archive_info``), so a consumer comparing it with the
index's wheel hash is never misled.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import platform as runtime
import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

SPEC_VERSION = "1.5"
HASH_ALGORITHMS = {
    "md5": "MD5",
    "sha1": "SHA-1",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
}
"""Archive hash names (``direct_url.json``) → CycloneDX ``hash-alg`` names."""
_LICENSE_CLASSIFIER = "License :: "
_SHORT_LICENSE = 80
"""A ``License`` field longer than this (or on several lines) is a license's text, not
its name: the classifiers name it instead."""


def normalize(name: str) -> str:
    """A distribution name as PEP 503 and the pypi purl type write it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def purl(name: str, version: str) -> str:
    """``pkg:pypi/NAME@VERSION``: the name normalized, the version percent-encoded."""
    return f"pkg:pypi/{normalize(name)}@{quote(version, safe='.-_~')}"


def _licenses(meta: Any) -> list[dict[str, Any]]:
    expression = meta.get("License-Expression")
    if expression:
        return [{"expression": str(expression).strip()}]
    declared = str(meta.get("License") or "").strip()
    short = "\n" not in declared and len(declared) <= _SHORT_LICENSE
    if declared and short and declared.upper() not in ("UNKNOWN", "NONE"):
        return [{"license": {"name": declared}}]
    names = [
        c.rsplit(" :: ", 1)[-1]
        for c in meta.get_all("Classifier") or []
        if c.startswith(_LICENSE_CLASSIFIER) and c.count(" :: ") >= 1
    ]
    return [{"license": {"name": n}} for n in dict.fromkeys(names) if n != "OSI Approved"]


def _archive_hashes(dist: metadata.Distribution) -> list[dict[str, str]]:
    text = dist.read_text("direct_url.json")
    if not text:
        return []
    try:
        info = json.loads(text).get("archive_info") or {}
    except (ValueError, AttributeError):
        return []
    found: dict[str, str] = dict(info.get("hashes") or {})
    if not found and isinstance(info.get("hash"), str) and "=" in info["hash"]:
        alg, _, value = info["hash"].partition("=")
        found[alg] = value
    return [
        {"alg": HASH_ALGORITHMS[alg], "content": value.lower()}
        for alg, value in sorted(found.items())
        if alg in HASH_ALGORITHMS and re.fullmatch(r"[0-9a-fA-F]+", value)
    ]


def _record_properties(dist: metadata.Distribution) -> list[dict[str, str]]:
    text = dist.read_text("RECORD")
    if not text:
        return []
    hashed = sum(1 for line in text.splitlines() if ",sha256=" in line)
    return [
        {"name": "ghaf:record:sha256", "value": hashlib.sha256(text.encode()).hexdigest()},
        {"name": "ghaf:record:files", "value": str(hashed)},
    ]


def _requires(dist: metadata.Distribution, installed: dict[str, str]) -> list[str]:
    """purls of the installed distributions ``dist`` requires (markers evaluated, no extras)."""
    refs: list[str] = []
    for line in dist.requires or []:
        try:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
        except (InvalidRequirement, UndefinedEnvironmentName):
            continue
        ref = installed.get(normalize(requirement.name))
        if ref is not None and ref not in refs:
            refs.append(ref)
    return sorted(refs)


def _component(dist: metadata.Distribution) -> dict[str, Any]:
    meta: Any = dist.metadata  # an email.message.Message: .get() is there
    name, version = str(meta["Name"]), dist.version
    ref = purl(name, version)
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": ref,
        "name": name,
        "version": version,
        "purl": ref,
    }
    if meta.get("Summary"):
        component["description"] = str(meta["Summary"])
    licenses = _licenses(meta)
    if licenses:
        component["licenses"] = licenses
    hashes = _archive_hashes(dist)
    if hashes:
        component["hashes"] = hashes
    properties = _record_properties(dist)
    if properties:
        component["properties"] = properties
    return component


def _distributions() -> Iterable[metadata.Distribution]:
    """Each installed distribution once (the first on ``sys.path`` wins, as imports do)."""
    seen: set[str] = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or normalize(str(name)) in seen:
            continue
        seen.add(normalize(str(name)))
        yield dist


def environment_sbom(now: datetime, *, root: str = "ghaf") -> dict[str, Any]:
    """The CycloneDX 1.5 BOM of the distributions installed in this interpreter.

    Args:
        now: the BOM's ``metadata.timestamp``.
        root: the distribution described as the BOM's subject (``metadata.component``).
    """
    dists = sorted(_distributions(), key=lambda d: normalize(str(d.metadata["Name"])))
    installed = {
        normalize(str(d.metadata["Name"])): purl(str(d.metadata["Name"]), d.version) for d in dists
    }
    subject: dict[str, Any] | None = None
    components: list[dict[str, Any]] = []
    dependencies: list[dict[str, Any]] = []
    for dist in dists:
        component = _component(dist)
        if normalize(component["name"]) == normalize(root):
            subject = {**component, "type": "application"}
        else:
            components.append(component)
        dependencies.append({"ref": component["bom-ref"], "dependsOn": _requires(dist, installed)})
    python = {
        "type": "platform",
        "bom-ref": f"python@{runtime.python_version()}",
        "name": runtime.python_implementation().lower(),
        "version": runtime.python_version(),
    }
    components.append(python)
    tool = {"type": "application", "name": root}
    if subject is not None:
        tool["version"] = subject["version"]
    bom: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "tools": {"components": [tool]},
            "properties": [
                {"name": "ghaf:python", "value": runtime.python_version()},
                {"name": "ghaf:platform", "value": runtime.platform()},
            ],
        },
        "components": components,
        "dependencies": dependencies,
    }
    if subject is not None:
        bom["metadata"]["component"] = subject
    return bom
