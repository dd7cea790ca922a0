"""Every block marked runnable in README.md and docs/ runs, in order, as a user would.

A page marks a fenced block with an HTML comment on the line before it (invisible once
rendered)::

    <!-- runnable -->
    ```bash
    ghaf init
    ```

A block with a ``title="PATH"`` is a file the reader saves: it is written to PATH. Any
other marked block is shell: run by one ``bash`` per page (``set -euo pipefail``), so
variables carry from block to block as in the reader's terminal. Each page runs in an
empty directory that is also ``$HOME``, with the venv's ``ghaf`` and ``python`` first on
``PATH`` and no ``GHAF_*`` variable from outside.

A page that uses a service names it by a variable the reader sets to their own: the
runner sets each one the page mentions (:data:`SERVICES`) to the test's service (a fresh
PostgreSQL database, the running NATS, a real OIDC provider), and fails, naming the fix,
when that service is missing, as every other test does.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^(?P<fence>```+)(?P<info>.*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
#: The variables a page may use for a service the reader runs, and what the runner sets.
SERVICES = ("PG_URL", "NATS_URL", "OIDC_ISSUER")
#: OIDC_ISSUER's provider: one client-credentials client and the groups its tokens carry.
OIDC_CLIENT = "ci-pipeline"
OIDC_GROUPS = ["ml-scientists"]


@dataclass(frozen=True)
class Block:
    """One marked block: its line in the page, its language, the file it is (if any)."""

    line: int
    language: str
    title: str | None
    body: str


def runnable_blocks(text: str, where: str = "page") -> list[Block]:
    """The marked blocks of a Markdown page, in order.

    Raises:
        ValueError: a marker is not followed by a fenced block, or a fence is not closed.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    for index, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        start = index + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        opening = FENCE.match(lines[start]) if start < len(lines) else None
        if opening is None:
            raise ValueError(f"{where}:{index + 1}: {MARKER} is not followed by a fenced block")
        fence, info = opening["fence"], opening["info"].strip()
        end = start + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise ValueError(f"{where}:{start + 1}: the fenced block is not closed")
        title = TITLE.search(info)
        blocks.append(
            Block(
                line=start + 1,
                language=info.split()[0] if info else "",
                title=title["title"] if title else None,
                body="\n".join(lines[start + 1 : end]) + "\n",
            )
        )
    return blocks


def page_script(blocks: list[Block], where: str) -> str:
    """One bash script: each file written, each shell block run, in page order."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        parts.append(f"echo {shlex.quote(f'>>> {where}:{block.line}')} >&2")
        if block.title is not None:
            path = shlex.quote(block.title)
            parts.append(f'mkdir -p "$(dirname {path})"')
            parts.append(f"cat > {path} <<'GHAF_DOCS_EOF'\n{block.body}GHAF_DOCS_EOF")
        else:
            parts.append(block.body)
    return "\n".join(parts) + "\n"


def services_used(text: str) -> list[str]:
    """The :data:`SERVICES` variables a page reads (``$NAME`` or ``${NAME}``)."""
    return [name for name in SERVICES if re.search(rf"\$\{{?{name}\b", text)]


@contextmanager
def service_env(
    names: list[str], request: pytest.FixtureRequest, where: Path
) -> Iterator[dict[str, str]]:
    """The variables for ``names``, each pointing at a service running for this test."""
    env: dict[str, str] = {}
    with ExitStack() as stack:
        if "PG_URL" in names:
            env["PG_URL"] = request.getfixturevalue("postgres_url")
        if "NATS_URL" in names:
            env["NATS_URL"] = request.getfixturevalue("nats_url")
        if "OIDC_ISSUER" in names:
            from tests.integration.oidc_support import AUDIENCE, SECRET, run_provider

            provider = stack.enter_context(
                run_provider(where / "oidc-provider", {OIDC_CLIENT: OIDC_GROUPS})
            )
            env |= {
                "OIDC_ISSUER": provider.issuer,
                "OIDC_AUDIENCE": AUDIENCE,
                "OIDC_CLIENT_ID": OIDC_CLIENT,
                "OIDC_CLIENT_SECRET": SECRET,
            }
        yield env


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p for p in found if MARKER in p.read_text(encoding="utf-8")]


@pytest.mark.slow
@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_runnable_blocks_run(
    page: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> None:
    where = str(page.relative_to(ROOT))
    text = page.read_text(encoding="utf-8")
    blocks = runnable_blocks(text, where)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHAF_", *SERVICES))}
    env |= {
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "COLUMNS": "120",
    }
    used = services_used("\n".join(block.body for block in blocks))
    with service_env(used, request, tmp_path_factory.mktemp("services")) as services:
        result = subprocess.run(
            ["bash", "-c", page_script(blocks, where)],
            cwd=tmp_path,
            env=env | services,
            capture_output=True,
            text=True,
            timeout=1500,
        )
    # The last ">>> page:line" on stderr names the block that failed.
    assert result.returncode == 0, (
        f"{where}: exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
        f"\n--- stderr\n{result.stderr[-6000:]}"
    )


def test_the_tutorial_and_readme_have_runnable_blocks() -> None:
    """The pages the issue names are tested, so the test above cannot pass on nothing."""
    names = {str(p.relative_to(ROOT)) for p in pages()}
    assert {"README.md", "docs/getting-started/tutorial.md"} <= names
    tutorial = runnable_blocks((ROOT / "docs/getting-started/tutorial.md").read_text())
    assert {"train.py", "orders.contract.yaml", "features.yaml"} <= {b.title for b in tutorial}
    assert sum(b.title is None for b in tutorial) >= 8


def test_the_team_and_sso_pages_run_against_real_services() -> None:
    """The team page uses PostgreSQL and NATS, the security page an OIDC provider."""
    team = runnable_blocks((ROOT / "docs/team.md").read_text())
    team_shell = "\n".join(b.body for b in team)
    assert services_used(team_shell) == ["PG_URL", "NATS_URL"]
    assert "moto_server" in team_shell and "ghaf server" in team_shell
    security = "\n".join(b.body for b in runnable_blocks((ROOT / "docs/security.md").read_text()))
    assert services_used(security) == ["OIDC_ISSUER"]
    assert "ghaf certs dev" in security and "SSL_CERT_FILE" in security


def test_services_used_reads_both_spellings() -> None:
    assert services_used("echo $PG_URL ${NATS_URL} $PG_URLX $OIDC_ISSUERS") == [
        "PG_URL",
        "NATS_URL",
    ]


def test_a_marker_without_a_block_is_refused() -> None:
    with pytest.raises(ValueError, match="page:1: <!-- runnable --> is not followed"):
        runnable_blocks("<!-- runnable -->\nsome text\n")
    with pytest.raises(ValueError, match="not closed"):
        runnable_blocks("<!-- runnable -->\n```bash\nghaf init\n")


def test_files_are_written_and_shell_blocks_share_one_shell(tmp_path: Path) -> None:
    page = (
        '<!-- runnable -->\n```toml title="sub/a.toml"\nx = 1\n```\n\n'
        "<!-- runnable -->\n```bash\nexport V=$(cat sub/a.toml)\n```\n"
        "```bash\nnot run\n```\n"
        '<!-- runnable -->\n```bash\necho "$V" > out\n```\n'
    )
    blocks = runnable_blocks(page)
    assert [b.title for b in blocks] == ["sub/a.toml", None, None]
    script = page_script(blocks, "page")
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True, timeout=60)
    assert (tmp_path / "out").read_text() == "x = 1\n"
    failing = page_script(runnable_blocks("<!-- runnable -->\n```bash\nfalse\necho no\n```\n"), "p")
    result = subprocess.run(["bash", "-c", failing], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and ">>> p:2" in result.stderr and "no" not in result.stdout
