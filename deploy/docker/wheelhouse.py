"""Pack what a virtual environment has installed as wheels, for offline image installs.

``python deploy/docker/wheelhouse.py OUT REQUIREMENT...`` writes to OUT one wheel per
distribution in the dependency closure of the requirements (``ghaf[...]`` itself is left
out: the install scripts build it from source), plus setuptools for that build, each
repacked from the files the running interpreter's environment holds. The versions are
therefore exactly the environment's, which ``make venv`` installed from constraints.txt.

Then an install script runs without a network and downloads nothing::

    PIP_NO_INDEX=1 PIP_FIND_LINKS=OUT sh deploy/docker/install-inference.sh /opt/ghaf

CI's test of the inference image does this (tests/packaging/test_image_install.py), and so
does an image build on a machine that reaches no package index (see docs/deploy.md).
Repacking keeps each wheel's own ``WHEEL`` tags; files outside the environment's
site-packages (console scripts, data) are left out, and pip writes its own scripts from
the entry points.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as md
import io
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SOURCE = Path(__file__).resolve().parents[2]
SKIPPED = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
"""Written by the installer, not part of a wheel."""


def _ghaf_requires() -> list[str]:
    """Ghaf's requirements as the source tree declares them (an editable install's metadata
    can be older than pyproject.toml)."""
    project = tomllib.loads((SOURCE / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        lines += [f'{line}; extra == "{extra}"' for line in requirements]
    return lines


def closure(requirements: list[str]) -> dict[str, md.Distribution]:
    """Every installed distribution the requirements need (markers and extras followed).

    Raises:
        SystemExit: a needed distribution is not installed here (``make venv`` first).
    """
    found: dict[str, md.Distribution] = {}
    extras_of: dict[str, set[str]] = {}
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        key = canonicalize_name(requirement.name)
        known = extras_of.setdefault(key, set())
        if key in found and set(requirement.extras) <= known:
            continue
        known |= set(requirement.extras)
        try:
            found[key] = distribution = md.distribution(requirement.name)
        except md.PackageNotFoundError:
            sys.exit(f"{requirement.name} is not installed in {sys.prefix}: run make venv")
        requires = _ghaf_requires() if key == "ghaf" else distribution.requires or []
        for line in requires:
            needed = Requirement(line)
            wanted = any(
                needed.marker is None
                or needed.marker.evaluate({**default_environment(), "extra": e})
                for e in (known or {""})
            )
            if wanted:
                pending.append(needed)
    return found


def _tag(distribution: md.Distribution) -> str:
    wheel = distribution.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    if not tags:
        return "py3-none-any"
    pythons, abis, platforms = (sorted({t.split("-")[i] for t in tags}) for i in range(3))
    return "-".join(".".join(part) for part in (pythons, abis, platforms))


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def repack(distribution: md.Distribution, out: Path) -> Path:
    """One installed distribution as a wheel in ``out`` (stored, not compressed: fast)."""
    name = distribution.metadata["Name"].replace("-", "_").replace(".", "_")
    info = f"{name}-{distribution.version}.dist-info"
    target = out / f"{name}-{distribution.version}-{_tag(distribution)}.whl"
    root = Path(str(distribution.locate_file("")))
    records: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as wheel:
        for file in distribution.files or []:
            path = str(file)
            if path.startswith("..") or "__pycache__" in path:
                continue  # scripts and data outside site-packages; bytecode pip recompiles
            top, _, rest = path.partition("/")
            if top.endswith(".dist-info"):
                if rest in SKIPPED:
                    continue
                path = f"{info}/{rest}"
            data = (root / str(file)).read_bytes()
            wheel.writestr(path, data)
            records.append((path, _digest(data), str(len(data))))
        listing = io.StringIO()
        writer = csv.writer(listing, lineterminator="\n")
        writer.writerows([*records, (f"{info}/RECORD", "", "")])
        wheel.writestr(f"{info}/RECORD", listing.getvalue())
    return target


def build(out: Path, requirements: list[str]) -> list[Path]:
    """Fill ``out`` (created atomically: a half-written wheelhouse is never seen)."""
    wanted = closure([*requirements, "setuptools"])
    wanted.pop("ghaf", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    made = [repack(distribution, partial) for distribution in wanted.values()]
    try:
        partial.rename(out)
    except OSError:  # another process made it first: use theirs
        for path in made:
            path.unlink()
        partial.rmdir()
    return sorted(out.iterdir())


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: wheelhouse.py OUT REQUIREMENT...")
    wheels = build(Path(sys.argv[1]), sys.argv[2:])
    print(f"{len(wheels)} wheels in {sys.argv[1]}")
