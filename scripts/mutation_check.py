"""Disable each security check in turn and show that the test suite notices.

For every guard below, a copy of the tree gets that one function short-circuited (an early
``return`` of what "allowed" looks like, right after its docstring), then the guard's
tests run against the copy (``PYTHONPATH`` points at it, so CLI and server subprocesses
run the mutant too). A guard whose tests still pass is a hole in the suite.

    .venv/bin/python scripts/mutation_check.py            # every guard
    .venv/bin/python scripts/mutation_check.py four-eyes  # some

Prints one line per guard and a JSON summary; exits 1 if any mutant survives.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Guard:
    """One security check: where it lives, what "let it through" returns, and its tests."""

    name: str
    file: str
    function: str
    allowed: str
    tests: tuple[str, ...]


GUARDS: tuple[Guard, ...] = (
    Guard(
        "signature-verification",
        "src/ghaf/security/signing.py",
        "verify_model_dir",
        "sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob('*') "
        "if p.is_file() and p.name != SIGNATURE_FILE)",
        ("tests/unit/security/test_signing.py", "tests/unit/serving/test_verification.py"),
    ),
    Guard(
        "pickle-allow-list",
        "src/ghaf/security/pickles.py",
        "check_pickle_file",
        "None",
        ("tests/unit/security", "tests/unit/models"),
    ),
    Guard(
        "server-authorization",
        "src/ghaf/access/guard.py",
        "authorize",
        "None",
        ("tests/unit/serving/test_server_auth.py", "tests/unit/features/test_server_access.py"),
    ),
    Guard(
        "server-authentication",
        "src/ghaf/access/http_auth.py",
        "authenticate",
        "Actor('anonymous', credential=Credential('token', 'mutant'), "
        "roles=frozenset({'@credential', '*:release_manager', '*:model_server'}))",
        ("tests/unit/serving/test_server_auth.py", "tests/unit/identity/test_helpers.py"),
    ),
    Guard(
        "rbac",
        "src/ghaf/security/rbac.py",
        "decide",
        "Decision(True, 'mutant')",
        ("tests/unit/identity/test_rbac_table.py", "tests/unit/core/test_spine.py"),
    ),
    Guard(
        "identity-not-asserted",
        "src/ghaf/platform.py",
        "check_not_asserted",
        "None",
        ("tests/e2e/test_release_path.py::test_the_five_commands_replayed",),
    ),
    Guard(
        "four-eyes",
        "src/ghaf/registry/four_eyes.py",
        "second_person_flags",
        "[]",
        (
            "tests/unit/registry/test_registry.py",
            "tests/unit/registry/test_release_table.py",
        ),
    ),
    Guard(
        "release-policy",
        "src/ghaf/registry/release.py",
        "check_release",
        "policy_in(session, version.project)",
        ("tests/unit/registry/test_release_table.py", "tests/unit/serving/test_deployments.py"),
    ),
    Guard(
        "release-policy-at-serving",
        "src/ghaf/registry/release.py",
        "check_serving",
        "None",
        (
            "tests/unit/serving/test_serving_release_check.py",
            "tests/unit/serving/test_server_auth.py",
        ),
    ),
    Guard(
        "residency",
        "src/ghaf/security/residency.py",
        "decide_residency",
        "ResidencyDecision(target_region, {}, {})",
        (
            "tests/unit/identity/test_residency.py",
            "tests/unit/identity/test_residency_write_paths.py",
        ),
    ),
    Guard(
        "audit-verification",
        "src/ghaf/security/audit_verify.py",
        "verify_audit",
        "AuditReport(records=0, checkpoints=0)",
        ("tests/unit/security",),
    ),
    Guard(
        "model-request-validation",
        "src/ghaf/serving/protocol.py",
        "check_range",
        "None",
        ("tests/unit/serving",),
    ),
    Guard(
        "feature-request-validation",
        "src/ghaf/features/validation.py",
        "entity_ids",
        "list(values)",
        ("tests/unit/features/test_server_access.py", "tests/unit/features"),
    ),
    Guard(
        "online-pii-sealing",
        "src/ghaf/features/sealing.py",
        "is_pii",
        "False",
        ("tests/unit/features/test_sealed_pii.py",),
    ),
)


def _short_circuit(source: str, function: str, value: str) -> str:
    """``source`` with ``function`` returning ``value`` first thing (after its docstring)."""
    match = re.search(rf"^([ \t]*)def {re.escape(function)}\(", source, flags=re.M)
    if match is None:
        raise LookupError(f"def {function}( not found")
    indent = match.group(1) + "    "
    header_end = re.compile(r"\)\s*(->[^:]*)?:\n").search(source, match.end())
    if header_end is None:
        raise LookupError(f"end of def {function} not found")
    body = header_end.end()
    rest = source[body:]
    doc = re.match(rf'{indent}(?:r|u)?("""|\'\'\')', rest)
    if doc is not None:
        close = rest.index(doc.group(1), doc.end()) + 3
        body += rest.index("\n", close) + 1
    return source[:body] + f"{indent}return {value}  # MUTANT\n" + source[body:]


def _copy_tree(target: Path) -> None:
    for part in ("src", "tests", "benchmarks", "pyproject.toml", "scripts"):
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(
                src,
                target / part,
                ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", "node_modules"),
            )
        else:
            shutil.copy2(src, target / part)
    node = ROOT / "tests" / "integration" / "oidc" / "node_modules"
    if node.is_dir():
        (target / "tests" / "integration" / "oidc" / "node_modules").symlink_to(node)


def run_guard(guard: Guard) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"ghaf-mutant-{guard.name}-") as tmp:
        tree = Path(tmp)
        _copy_tree(tree)
        path = tree / guard.file
        try:
            path.write_text(_short_circuit(path.read_text(), guard.function, guard.allowed))
        except (LookupError, ValueError, FileNotFoundError) as exc:
            return {"guard": guard.name, "result": "not applied", "why": str(exc)}
        env = {**os.environ, "PYTHONPATH": str(tree / "src") + os.pathsep + str(tree)}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             "-p", "no:randomly", "-n", "2", *guard.tests],
            cwd=tree, env=env, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        tail = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
        # Killed only by a failing test: an error (a collection error...) proves nothing.
        verdict = "killed" if tail else "SURVIVED" if result.returncode == 0 else "ERRORED"
        return {
            "guard": guard.name,
            "function": f"{guard.file}:{guard.function}",
            "result": verdict,
            "first_failure": tail[0] if tail else result.stdout.strip().splitlines()[-1:],
            "seconds": round(time.monotonic() - started, 1),
        }


def main() -> int:
    wanted = set(sys.argv[1:])
    results = []
    for guard in GUARDS:
        if wanted and guard.name not in wanted:
            continue
        outcome = run_guard(guard)
        results.append(outcome)
        print(f"{outcome['guard']:28} {outcome['result']:12} {outcome.get('first_failure', '')}")
        sys.stdout.flush()
    print(json.dumps(results, indent=1))
    return 0 if all(r["result"] == "killed" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
