"""What Ghaf imports is what it declares: core dependencies, or the extra ghaf.deps names."""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from scripts.write_constraints import EXTRAS, closure, own_requirements

from ghaf.deps import OPTIONAL_MODULES, missing_dependency
from ghaf.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ghaf"
TESTING = SRC / "testing"
"""ghaf.testing is the contract suites third parties run under pytest: it needs pytest."""


def _imports(tree: ast.Module) -> set[str]:
    """Top-level names of every import that runs (not those under ``if TYPE_CHECKING``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.partition(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found - set(sys.stdlib_module_names) - {"ghaf", "__future__"}


def third_party_imports() -> dict[str, set[str]]:
    """Import name -> the modules of ``src/ghaf`` that import it."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        if TESTING in path.parents:
            continue
        for name in _imports(ast.parse(path.read_text())):
            found.setdefault(name, set()).add(str(path.relative_to(SRC)))
    return found


@functools.cache
def _import_names() -> dict[str, list[str]]:
    return dict(md.packages_distributions())  # reads every RECORD: once per session


def providers(module: str) -> set[str]:
    """Canonical names of the installed distributions that provide import name ``module``."""
    return {canonicalize_name(d) for d in _import_names().get(module, [])}


def test_every_import_is_a_core_dependency_or_an_extra_that_ghaf_deps_names() -> None:
    core = closure(own_requirements(()))
    undeclared = {
        module: sorted(where)
        for module, where in third_party_imports().items()
        if module not in OPTIONAL_MODULES and not providers(module) & core.keys()
    }
    assert not undeclared, (
        "declare these in pyproject.toml's dependencies, or map them to their extra in "
        f"ghaf.deps.OPTIONAL_MODULES: {undeclared}"
    )


@pytest.mark.parametrize("module", sorted(OPTIONAL_MODULES))
def test_each_optional_module_comes_with_the_extra_it_names(module: str) -> None:
    distribution, extra = OPTIONAL_MODULES[module]
    declared = {canonicalize_name(r.name) for r in own_requirements((extra,))}
    assert canonicalize_name(distribution) in declared, (module, extra)
    # The named distribution (or what it pulls in: joblib with scikit-learn) provides it.
    assert providers(module) & closure([Requirement(distribution)]).keys(), module


def test_constraints_pin_every_distribution_the_extras_need() -> None:
    """constraints.txt is in step with pyproject.toml and the venv make venv built."""
    pins: dict[str, str] = {
        canonicalize_name(name): version
        for name, _, version in (
            line.strip().partition("==")
            for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
    }
    needed = closure(own_requirements(EXTRAS))
    unpinned = sorted(needed.keys() - pins.keys())
    assert not unpinned, f"run scripts/write_constraints.py: {unpinned} are not pinned"
    drifted = {
        name: (pins[name], version)
        for name, version in needed.items()
        if pins[name] != version.split("+", 1)[0]
    }
    assert not drifted, f"the venv differs from constraints.txt (pin, installed): {drifted}"


def test_a_missing_optional_module_becomes_the_error_naming_its_extra() -> None:
    error = missing_dependency(ModuleNotFoundError(name="sklearn.linear_model"))
    assert isinstance(error, MissingDependencyError)
    assert (error.package, error.extra) == ("scikit-learn", "ml")
    assert error.hint == "pip install 'ghaf[ml]'"
    # A module that is no optional dependency is a bug: the caller keeps its traceback.
    assert missing_dependency(ModuleNotFoundError(name="ghaf.nonexistent")) is None
    assert missing_dependency(ModuleNotFoundError()) is None


ABSENT = "ghaf_test_absent_extra_module"
"""A top-level module that no environment has, standing in for a missing extra's."""


def test_ghafs_own_import_of_a_missing_extra_names_it_wherever_the_import_sits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A function-level ``import sklearn`` deep in the SDK raises the error naming the
    extra; the same import from a user's module, and a library's ``find_spec`` probe,
    keep Python's own answers (a probe must never raise)."""
    import importlib.util
    import sys

    import ghaf  # installs the finder
    from ghaf.deps import ExtrasFinder

    assert ghaf is not None and ExtrasFinder in sys.meta_path  # after the path finders
    monkeypatch.setitem(OPTIONAL_MODULES, ABSENT, ("absent-dist", "ml"))
    code = compile(f"def load():\n    import {ABSENT}\n", "<module>", "exec")
    inside: dict[str, object] = {"__name__": "ghaf.models.flavors.example"}
    exec(code, inside)
    with pytest.raises(MissingDependencyError) as raised:
        inside["load"]()  # type: ignore[operator]
    assert (raised.value.package, raised.value.extra) == ("absent-dist", "ml")
    assert raised.value.hint == "pip install 'ghaf[ml]'"
    assert isinstance(raised.value, ModuleNotFoundError)  # `except ImportError` still holds
    users: dict[str, object] = {"__name__": "my_project.train"}
    exec(code, users)
    with pytest.raises(ModuleNotFoundError) as plain:
        users["load"]()  # type: ignore[operator]
    assert not isinstance(plain.value, MissingDependencyError)
    assert importlib.util.find_spec(ABSENT) is None
