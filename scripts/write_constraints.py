"""Write constraints.txt: the exact versions installed for ghaf[dev,all,docs], read off a venv.

The package metadata declares ranges; this file pins what dev and CI install (``make venv``
passes it with ``-c``). Only the dependency closure of pyproject.toml's requirements is
written, so a package installed by hand into the venv never slips into the pins. Run it
with the venv's Python after an upgrade in a fresh venv:

    .venv/bin/python scripts/write_constraints.py > constraints.txt
"""

from __future__ import annotations

import importlib.metadata as md
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
EXTRAS = ("dev", "all", "docs")
HEADER = """\
# Exact versions for development and CI: `make venv` installs ghaf[dev,all,docs] with -c.
# The package metadata (pyproject.toml) keeps compatible ranges for users.
# Regenerate after changing a range, from a fresh venv:
#   .venv/bin/python scripts/write_constraints.py > constraints.txt
"""


def own_requirements(extras: Iterable[str]) -> list[Requirement]:
    """Ghaf's core requirements and those of ``extras``, its self-references expanded."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    optional: dict[str, list[str]] = project["optional-dependencies"]
    found = [Requirement(line) for line in project["dependencies"]]
    pending, done = list(extras), set()
    while pending:
        extra = pending.pop()
        if extra in done:
            continue
        done.add(extra)
        for line in optional[extra]:
            req = Requirement(line)
            if canonicalize_name(req.name) == project["name"]:
                pending.extend(req.extras)
            else:
                found.append(req)
    return found


def closure(requirements: Iterable[Requirement]) -> dict[str, str]:
    """Canonical name -> installed version of every distribution ``requirements`` need."""
    versions: dict[str, str] = {}
    visited: set[tuple[str, str]] = set()
    pending = list(requirements)
    while pending:
        req = pending.pop()
        key = canonicalize_name(req.name)
        dist = md.distribution(key)
        versions[key] = dist.version
        for extra in ["", *sorted(req.extras)]:
            if (key, extra) in visited:
                continue
            visited.add((key, extra))
            for line in dist.requires or []:
                dep = Requirement(line)
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    pending.append(dep)
    return versions


def main() -> None:
    sys.stdout.write(HEADER)
    for key, version in sorted(closure(own_requirements(EXTRAS)).items()):
        # torch 2.13.0+cpu: `torch==2.13.0` matches the CPU wheel pip finds on this disk.
        sys.stdout.write(f"{key}=={version.split('+', 1)[0]}\n")


if __name__ == "__main__":
    main()
