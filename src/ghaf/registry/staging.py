"""Staging a model source for registration: a copy that follows nothing, then the inspection.

The copy walks the source through directory file descriptors and opens every entry with
``O_NOFOLLOW``: a symbolic link (to ``/etc/passwd`` or anywhere), a hard-linked file, a
FIFO, socket or device, or a name that is not plain UTF-8 is refused naming its path,
and an entry swapped for a link between the check and the copy is refused too (the
type is checked again on the open descriptor). Nothing is stored on refusal: staging
happens in a temporary directory before a single byte reaches the artifact store.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from ghaf.errors import InvalidInputError, NotFoundError, PolicyViolationError
from ghaf.models.base import MODEL_FILE, ModelMeta
from ghaf.models.checks import check_model_dir, special_kind
from ghaf.models.custom_code import CodePolicy
from ghaf.models.flavors import get_flavor
from ghaf.models.formats import flavor_of_file
from ghaf.security.signing import SIGNATURE_FILE

_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _refuse(shown: str, why: str) -> PolicyViolationError:
    return PolicyViolationError(
        f"{shown} is {why}: a model directory holds regular files of its own only",
        hint="copy the real file into the model directory (cp -L / cp --no-preserve=links) "
        "and register again",
    )


def _check_name(name: str, shown: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(
            f"{shown} has a file name that is not UTF-8", hint="rename the file"
        ) from None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name) or "\\" in name:
        raise InvalidInputError(
            f"{shown!r} has control characters or a backslash in its name", hint="rename it"
        )


def _copy_fd(fd: int, shown: str, target: Path) -> None:
    """Copy the open regular file ``fd`` to ``target`` (refusing what it turned out to be)."""
    info = os.fstat(fd)
    kind = special_kind(info.st_mode)
    if kind is not None:
        raise _refuse(shown, kind)
    if info.st_nlink > 1:
        raise _refuse(shown, f"hard-linked ({info.st_nlink} names share its content)")
    with os.fdopen(fd, "rb", closefd=False) as src, target.open("xb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def _copy_tree(source: Path, target: Path) -> None:
    try:
        root = os.open(source, _OPEN_DIR)
    except OSError as exc:
        raise _refuse(str(source), "a symbolic link or not a directory") from exc
    try:
        target.mkdir(parents=True)
        for folder, dirs, files, dir_fd in os.fwalk(".", dir_fd=root, follow_symlinks=False):
            here = Path(folder)
            for name in sorted(dirs + files):
                relative = (here / name).as_posix().removeprefix("./")
                shown = f"{source}/{relative}"
                _check_name(name, shown)
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                kind = special_kind(info.st_mode)
                if kind is not None:
                    raise _refuse(shown, kind)
                if stat.S_ISDIR(info.st_mode):
                    (target / relative).mkdir()
                    continue
                if name == SIGNATURE_FILE:
                    continue  # registration signs the staged copy afresh
                fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
                try:
                    _copy_fd(fd, shown, target / relative)
                finally:
                    os.close(fd)
    finally:
        os.close(root)


def _copy_file(source: Path, target: Path) -> None:
    try:
        fd = os.open(source, _OPEN_FILE)
    except OSError as exc:
        info = source.lstat()
        raise _refuse(str(source), special_kind(info.st_mode) or "not readable") from exc
    try:
        _copy_fd(fd, str(source), target)
    finally:
        os.close(fd)


def stage_source(source: Path, workdir: Path, *, code_policy: CodePolicy | None = None) -> Path:
    """Copy a model directory (or wrap a single model file) into ``workdir`` and inspect it.

    Args:
        code_policy: the code policy of the project the model is registered in (None:
            custom code is off).

    Raises:
        NotFoundError: ``source`` does not exist.
        PolicyViolationError: a link, special or hard-linked file; a file whose content is
            not its format; metadata naming code; custom code the policy does not allow.
    """
    target = workdir / "model"
    try:
        info = source.lstat()
    except FileNotFoundError:
        raise NotFoundError(
            f"model source {source} does not exist", hint="check the path"
        ) from None
    if stat.S_ISLNK(info.st_mode):
        raise PolicyViolationError(
            f"model source {source} is a symbolic link",
            hint=f"register the path it points to ({source.resolve()}) if you trust it",
        )
    if stat.S_ISDIR(info.st_mode):
        if not (source / MODEL_FILE).is_file():
            raise InvalidInputError(
                f"{source} has no {MODEL_FILE}: it is not a Ghaf model directory",
                hint="save it with ghaf.models.save_model, or register a single model file",
            )
        _copy_tree(source, target)
    else:
        kind = special_kind(info.st_mode)
        if kind is not None:
            raise _refuse(str(source), kind)
        incoming = workdir / "incoming"
        incoming.mkdir()
        _copy_file(source, incoming / source.name)
        flavor = flavor_of_file(incoming / source.name)
        module = get_flavor(flavor)
        target.mkdir(parents=True)
        (incoming / source.name).rename(target / module.FILE)
        ModelMeta(flavor, [module.FILE], {"source_file": source.name}).write(target)
    check_model_dir(target, code_policy=code_policy)
    return target
