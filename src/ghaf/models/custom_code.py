"""Custom model code: a Python file inside the signed model directory, run only where allowed.

Loaders take data only: nothing in ``ghaf-model.json`` names code to import. A model
that needs code of its own (a ``pyfunc`` model, or a PyTorch architecture that cannot be
written as data) carries it as ``code/<name>.py`` inside its directory, so the code is
covered by the signature like every other file. It runs only in a project whose code
policy (set by a model approver, audited) allows custom code, and it may import only
the modules on that policy's allow-list.

Limits, stated plainly: this is not a sandbox. The import guard and the reduced
builtins stop the code from importing what the project did not allow and from the
obvious escape hatches (``eval``, ``open``, dunder introspection); an allowed module
brings everything it can do (``numpy.load(allow_pickle=True)``, ``torch.load``...).
What makes custom code acceptable is that it is signed with the version, reviewed
and allowed per project by an approver, and labelled on the model card and the gate.
"""

from __future__ import annotations

import ast
import builtins
import re
import shutil
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghaf.errors import InvalidInputError, PolicyViolationError, UserCodeError

CODE_DIR = "code"
"""Where a model directory keeps its custom code (one ``.py`` file)."""

ENTRY = "build"
"""The function the code file must define: it builds the model from the stored data."""

NEVER_ALLOWED = frozenset(
    {
        "_io", "_pickle", "asyncio", "builtins", "cloudpickle", "code", "codeop", "ctypes",
        "dill", "distutils", "ftplib", "gc", "ghaf", "glob", "http", "importlib", "inspect",
        "io", "joblib", "marshal", "multiprocessing", "nt", "os", "pathlib", "pickle", "pip",
        "pkgutil", "posix", "pty", "runpy", "setuptools", "shelve", "shutil", "signal", "site",
        "smtplib", "socket", "ssl", "subprocess", "sys", "sysconfig", "tempfile", "types",
        "urllib", "webbrowser", "zipimport",
    }
)  # fmt: skip
"""Modules that hand the code the process, files, network or other code: no policy allows
them (a second line behind the allow-list, not a replacement for it)."""

REMOVED_BUILTINS = frozenset(
    {
        "__import__", "breakpoint", "compile", "delattr", "eval", "exec", "getattr", "globals",
        "input", "locals", "open", "setattr", "vars",
    }
)  # fmt: skip
"""Builtins model code does not get: code loading, file access and reflection."""

_FRAME_ATTRS = frozenset(
    {"f_back", "f_builtins", "f_globals", "f_locals", "gi_code", "gi_frame", "cr_frame"}
    | {"tb_frame", "tb_next", "co_code", "func_globals", "ag_frame"}
)
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FILE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$")


def check_module_name(name: str) -> str:
    """``name`` if a code policy may allow it (a dotted module name not in NEVER_ALLOWED).

    Raises:
        InvalidInputError: naming the module and why.
    """
    if not _MODULE.match(name):
        raise InvalidInputError(
            f"module {name!r} is not a dotted Python module name", hint="e.g. numpy or sklearn"
        )
    if name.split(".")[0] in NEVER_ALLOWED:
        raise InvalidInputError(
            f"module {name} can never be allowed for model code: it reaches the process, "
            "files, network or other code",
            hint="model code gets data libraries only (numpy, scipy, sklearn, torch...)",
        )
    return name


@dataclass(frozen=True)
class CodePolicy:
    """A project's code policy: the modules custom model code may import (none: off)."""

    project: str
    modules: tuple[str, ...] = ()
    version: int = 0
    """0: the built-in default (custom code off)."""
    set_by: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.modules)

    def allows(self, module: str) -> bool:
        """Whether ``module`` (or the package it is in) is on the allow-list."""
        if module.split(".")[0] in NEVER_ALLOWED:
            return False
        return any(module == m or module.startswith(m + ".") for m in self.modules)


@dataclass(frozen=True)
class CodeReport:
    """What a code file imports and the constructs refused whatever the policy says."""

    path: str
    imports: tuple[str, ...]
    problems: tuple[str, ...]

    def label(self) -> str:
        """The words the card and the gate use."""
        used = ", ".join(self.imports) or "nothing"
        return f"runs custom code: {self.path} (imports {used})"


def code_path(relative: str) -> str:
    """``relative`` if it names a code file where a model keeps it (``code/<name>.py``).

    Raises:
        PolicyViolationError: anywhere else (outside the directory, another folder).
    """
    folder, _, name = relative.partition("/")
    if folder != CODE_DIR or not _FILE.match(name):
        raise PolicyViolationError(
            f"model code {relative!r} is not a file {CODE_DIR}/<name>.py inside the model "
            "directory",
            hint="save the model with code=PATH; the code travels inside the signed directory",
        )
    return relative


def copy_code(code: Path | str, directory: Path) -> str:
    """Copy the code file ``code`` into ``directory/code/``; its relative path.

    Raises:
        InvalidInputError: not an existing ``.py`` file, or not valid Python.
    """
    source = Path(code)
    if not source.is_file() or source.is_symlink() or not _FILE.match(source.name):
        raise InvalidInputError(
            f"model code {source} is not a Python file (name.py)",
            hint="pass code= the path of the .py file that defines build(...)",
        )
    report = analyse(source, f"{CODE_DIR}/{source.name}")
    if report.problems:
        raise InvalidInputError(report.problems[0], hint="model code builds a model from data")
    (directory / CODE_DIR).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, directory / CODE_DIR / source.name)
    return f"{CODE_DIR}/{source.name}"


def analyse(path: Path, relative: str) -> CodeReport:
    """Read ``path`` (never run it): its imports and refused constructs."""
    try:
        tree = ast.parse(path.read_bytes().decode("utf-8"), filename=relative)
    except (UnicodeDecodeError, SyntaxError) as exc:
        return CodeReport(relative, (), (f"{relative} is not valid UTF-8 Python: {exc}",))
    imports: set[str] = set()
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(f"{relative} line {node.lineno}: relative imports are refused")
            elif node.module:
                imports.add(node.module)
        elif isinstance(node, ast.Name) and node.id in REMOVED_BUILTINS | {"__builtins__"}:
            problems.append(f"{relative} line {node.lineno}: {node.id} is not available to "
                            "model code")  # fmt: skip
        elif isinstance(node, ast.Attribute) and _escape_hatch(node.attr):
            problems.append(f"{relative} line {node.lineno}: attribute {node.attr} is refused "
                            "(introspection reaches past the import guard)")  # fmt: skip
    for name in sorted(imports):
        if name.split(".")[0] in NEVER_ALLOWED:
            problems.append(f"{relative} imports {name}, which model code may never import")
    return CodeReport(relative, tuple(sorted(imports)), tuple(problems))


def _escape_hatch(attr: str) -> bool:
    dunder = attr.startswith("__") and attr.endswith("__") and attr != "__init__"
    return dunder or attr in _FRAME_ATTRS


def policy_problems(report: CodeReport, policy: CodePolicy | None) -> list[str]:
    """Why ``policy`` does not let the code in ``report`` run (empty: it may)."""
    if policy is None or not policy.enabled:
        project = f"project {policy.project}" if policy is not None else "this load"
        return [
            f"{report.path} is custom code, and custom code is off for {project} "
            "(no code policy allows it)"
        ]
    return [
        f"{report.path} imports {name}, which the code policy of project {policy.project} "
        "does not allow"
        for name in report.imports
        if not policy.allows(name)
    ]


def refuse_code(report: CodeReport, policy: CodePolicy | None) -> None:
    """Raise the first reason the code may not run.

    Raises:
        PolicyViolationError: naming the file and what is refused.
    """
    problems = list(report.problems) + policy_problems(report, policy)
    if problems:
        project = policy.project if policy is not None else "PROJECT"
        raise PolicyViolationError(
            problems[0],
            hint=f"a model approver reviews the code, then: ghaf policy code allow --project "
            f"{project} MODULE...",
        )


def _guarded_builtins(policy: CodePolicy, relative: str) -> dict[str, Any]:
    real_import = builtins.__import__

    def guarded_import(
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        if level or not policy.allows(name):
            raise PolicyViolationError(
                f"{relative} imports {name or '(relative)'}, which the code policy of project "
                f"{policy.project} does not allow",
                hint=f"ghaf policy code show --project {policy.project}",
            )
        return real_import(name, globals, locals, fromlist, level)

    allowed = {k: v for k, v in vars(builtins).items() if k not in REMOVED_BUILTINS}
    allowed["__import__"] = guarded_import
    return allowed


def load_code(directory: Path, relative: str, policy: CodePolicy | None) -> types.ModuleType:
    """Run the model's code file under ``policy``: its imports guarded, for as long as it lives.

    Raises:
        PolicyViolationError: the policy does not allow the code or one of its imports.
        UserCodeError: the code raised.
    """
    code_path(relative)
    path = directory / relative
    report = analyse(path, relative)
    refuse_code(report, policy)
    assert policy is not None  # nosec B101 - type narrowing: refuse_code raised otherwise
    compiled = compile(path.read_bytes(), f"<model code {relative}>", "exec", dont_inherit=True)
    module = types.ModuleType(f"ghaf_model_code_{Path(relative).stem}")
    module.__dict__["__builtins__"] = _guarded_builtins(policy, relative)
    try:
        exec(compiled, module.__dict__)  # noqa: S102  # nosec B102 - signed, allowed, guarded
    except PolicyViolationError:
        raise
    except Exception as exc:
        raise UserCodeError(
            f"{relative} raised {type(exc).__name__} while loading: {exc}",
            hint="fix the model code and register a new version",
        ) from exc
    return module


def call_build(module: types.ModuleType, relative: str, *args: Any, **kwargs: Any) -> Any:
    """Call the code's ``build(...)``; its errors become :class:`UserCodeError`."""
    build: Callable[..., Any] | None = module.__dict__.get(ENTRY)
    if not callable(build):
        raise InvalidInputError(
            f"{relative} defines no function {ENTRY}(...)",
            hint=f"define {ENTRY}(...) returning the model",
        )
    try:
        return build(*args, **kwargs)
    except PolicyViolationError:
        raise
    except Exception as exc:
        raise UserCodeError(
            f"{relative}: {ENTRY} raised {type(exc).__name__}: {exc}", hint="fix the model code"
        ) from exc


CODE_OPTIONS = frozenset({"entry_point", "entry_kwargs", "loader_module", "python_model"})
"""Options that once named code to import: refused on save, and in stored metadata."""


def refuse_code_options(options: dict[str, Any]) -> None:
    """Refuse a save that names code to import instead of carrying it.

    Raises:
        InvalidInputError: naming the option and what to pass instead.
    """
    for key in sorted(CODE_OPTIONS & set(options)):
        raise InvalidInputError(
            f"{key}={options[key]!r} is not accepted: loaders never import code that "
            "metadata names",
            hint="pass code=PATH of a .py file defining build(...) (it travels inside the "
            "signed model; the project's code policy must allow it); a PyTorch "
            "Sequential of standard layers needs no code",
        )
