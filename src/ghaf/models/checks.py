"""What a model directory holds, checked without loading it: the one inspection every door uses.

Registration, ``ghaf.load_model``, ``ghaf gate check`` and ``ghaf serve`` all ask
:func:`inspect_model_dir` before anything is loaded, so they refuse the same things:
links and special files, metadata that names code (an entry point), a file whose
content is not the format its flavor expects, a pickle that references code, and
custom code that the project's code policy does not allow.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghaf.errors import GhafError, PolicyViolationError
from ghaf.models.base import MODEL_FILE, ModelMeta
from ghaf.models.custom_code import (
    CODE_OPTIONS,
    CodePolicy,
    CodeReport,
    analyse,
    code_path,
    policy_problems,
)
from ghaf.models.formats import (
    claimed_format,
    format_problem,
    identify,
    pickle_like,
    torch_archive_problems,
)


@dataclass
class Inspection:
    """The outcome of inspecting one model directory."""

    flavor: str | None
    findings: list[str] = field(default_factory=list)
    """Each a reason to refuse the directory, naming the file."""
    code: CodeReport | None = None
    """The custom code the model runs, if any (allowed or not: see ``findings``)."""
    hint: str = (
        "save the model with ghaf.models.save_model (its code, if any, as code=PATH inside "
        "the directory) and register it again"
    )

    @property
    def notes(self) -> list[str]:
        """What a gate and a card say about the model besides refusals."""
        return [self.code.label()] if self.code is not None else []

    def refuse(self) -> None:
        """Raise the first finding.

        Raises:
            PolicyViolationError: naming the file and what was found.
        """
        if self.findings:
            more = f" (and {len(self.findings) - 1} more)" if len(self.findings) > 1 else ""
            raise PolicyViolationError(self.findings[0] + more, hint=self.hint)


def special_kind(mode: int) -> str | None:
    """What a non-regular, non-directory entry is, in words (None for a regular file)."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    return "a special file"


def tree_findings(directory: Path) -> list[str]:
    """Links, special files and hard-linked files anywhere under ``directory``."""
    findings = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(root, name)
            info = path.lstat()
            relative = path.relative_to(directory).as_posix()
            kind = special_kind(info.st_mode)
            if kind is not None:
                findings.append(f"{relative} is {kind}: model directories hold regular files only")
            elif stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                findings.append(
                    f"{relative} is hard-linked ({info.st_nlink} names): "
                    "model directories hold files of their own"
                )
    return findings


def _code_report(directory: Path, relative: Any) -> CodeReport:
    path = directory / code_path(str(relative))
    if not path.is_file() or path.is_symlink():
        return CodeReport(str(relative), (), (f"{relative} (the model's code) is missing",))
    return analyse(path, str(relative))


def inspect_model_dir(directory: Path, *, code_policy: CodePolicy | None = None) -> Inspection:
    """Everything wrong with ``directory`` as a model, without loading or running anything.

    ``code_policy``: the policy of the project the model belongs to; None means custom
    code is off.
    """
    from ghaf.models.flavors import get_flavor

    inspection = Inspection(None, tree_findings(directory))
    declared: set[str] = {MODEL_FILE}
    if not (directory / MODEL_FILE).is_file():
        inspection.findings += _content_findings(directory, declared)
        return inspection
    try:
        meta = ModelMeta.read(directory)
        flavor = get_flavor(meta.flavor)
    except GhafError as exc:
        inspection.findings.append(exc.headline)
        return inspection
    inspection.flavor = meta.flavor
    for key in sorted(CODE_OPTIONS & set(meta.options)):
        inspection.findings.append(
            f"{MODEL_FILE} names code to import ({key} = {meta.options[key]!r}): "
            "loaders take data only and never import what metadata names"
        )
    for relative in meta.files:
        if not _inside(directory, relative):
            inspection.findings.append(f"{MODEL_FILE} lists {relative!r}, outside the directory")
    meta_problems = getattr(flavor, "meta_problems", None)
    if meta_problems is not None:
        inspection.findings += meta_problems(meta.options)
    for relative, fmt in getattr(flavor, "FORMATS", {}).items():
        path = directory / relative
        declared.add(relative)
        if not path.is_file() or path.is_symlink():
            inspection.findings.append(f"{relative} (the {meta.flavor} model file) is missing")
            continue
        problem = format_problem(path, fmt, name=relative)
        if problem is not None:
            inspection.findings.append(problem)
    code = meta.options.get("code")
    if code is not None:
        try:
            report = _code_report(directory, code)
        except PolicyViolationError as exc:
            inspection.findings.append(exc.headline)
        else:
            declared.add(report.path)
            inspection.code = report
            refused = policy_problems(report, code_policy)
            if refused and not inspection.findings and not report.problems:
                project = code_policy.project if code_policy is not None else "PROJECT"
                inspection.hint = (
                    f"a model approver reviews {report.path}, then: ghaf policy code allow "
                    f"--project {project} MODULE..."
                )
            inspection.findings += list(report.problems) + refused
    elif getattr(flavor, "NEEDS_CODE", False):
        inspection.findings.append(
            f"{meta.flavor} models run code of their own, and {MODEL_FILE} names no code file "
            "inside the directory"
        )
    inspection.findings += _content_findings(directory, declared)
    return inspection


def _inside(directory: Path, relative: str) -> bool:
    target = (directory / relative).resolve()
    return not Path(relative).is_absolute() and target.is_relative_to(directory.resolve())


def _content_findings(directory: Path, declared: set[str]) -> list[str]:
    """Every other file: a name claiming a format must hold it; pickles are scanned."""
    from ghaf.security.pickles import check_pickle_file

    findings = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(directory).as_posix()
        if relative in declared:
            continue
        claimed = claimed_format(path.name)
        if claimed is not None:
            problem = format_problem(path, claimed, name=relative)
            if problem is not None:
                findings.append(problem)
                continue
        kind = pickle_like(path)
        if kind == "torch":
            findings.append(f"{relative} is {identify(path)}; store weights as safetensors")
        elif kind == "torch-export":
            findings += torch_archive_problems(path, name=relative)
        elif kind == "pickle":
            try:
                check_pickle_file(path)
            except GhafError as exc:
                findings.append(f"{relative}: {exc.headline}")
    return findings


def check_model_dir(directory: Path, *, code_policy: CodePolicy | None = None) -> Inspection:
    """:func:`inspect_model_dir`, refusing the first finding.

    Raises:
        PolicyViolationError: naming the file and what was found.
    """
    inspection = inspect_model_dir(directory, code_policy=code_policy)
    inspection.refuse()
    return inspection
