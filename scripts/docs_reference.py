"""The documentation's reference pages, generated from the code at build time.

MkDocs loads this file as a hook (``hooks:`` in mkdocs.yml): :func:`on_files` adds the
pages below to the site without writing them into ``docs/``, so nothing generated is
committed and nothing can go stale. The same functions keep README.md's exit-code table:
``python scripts/docs_reference.py --readme`` rewrites it between its markers, and
``tests/docs/test_reference.py`` fails when it differs from the code.

Pages: every setting (:class:`ghaf.settings.GhafSettings`), every CLI command (the Typer
apps of :data:`ghaf.cli.main.COMMANDS`), the HTTP API (the control plane's OpenAPI
document, also published as ``reference/openapi.json``), exit codes, HTTP statuses and
error classes (their tables), and the gate and release policy formats (their models).
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXIT_START = "<!-- generated: exit codes (scripts/docs_reference.py --readme) -->"
EXIT_END = "<!-- end of generated exit codes -->"

PAGES: dict[str, Callable[[], str]] = {}
"""Site path -> function that renders the page."""


def page(path: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register a generated page at ``path`` (relative to the site root)."""

    def register(render: Callable[[], str]) -> Callable[[], str]:
        PAGES[path] = render
        return render

    return register


def prose(text: object) -> str:
    """Help or docstring text as Markdown: code spans kept, ``<``, ``>``, ``*`` escaped outside."""
    parts = str(text).split("`")
    for index in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[index] = parts[index].replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
    return "`".join(parts)


def cell(text: object) -> str:
    """A value safe inside a Markdown table cell."""
    return prose(text).replace("|", "\\|").replace("\n", " ").strip()


def code(text: object) -> str:
    """Inline code that survives backquotes and table pipes in ``text``."""
    value = str(text).replace("|", "\\|")
    fence = "``" if "`" in value else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{value}{pad}{fence}"


# Settings ---------------------------------------------------------------------------


def type_name(annotation: Any) -> str:
    """A readable name for a field's annotation (``str | None``, ``list[str]``...)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is typing.Literal:
        return " | ".join(json.dumps(arg) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(arg) for arg in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def default_of(info: FieldInfo) -> str:
    """The field's default as a person would write it (factories are called)."""
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "(required)"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, Path):
        return str(value)
    return json.dumps(value, default=str)


def setting_rows() -> Iterator[tuple[str, str, str, str, str]]:
    """(dotted key, environment variable, type, default, description) of every setting."""
    from ghaf.settings import GhafSettings

    for name, info in GhafSettings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub, sub_info in annotation.model_fields.items():
                yield (
                    f"{name}.{sub}",
                    f"GHAF_{name.upper()}__{sub.upper()}",
                    type_name(sub_info.annotation),
                    default_of(sub_info),
                    sub_info.description or "",
                )
            continue
        yield (
            name,
            f"GHAF_{name.upper()}",
            type_name(annotation),
            default_of(info),
            info.description or "",
        )


@page("reference/settings.md")
def settings_page() -> str:
    """Every setting with its type, default, environment variable and description."""
    from ghaf.settings import GhafSettings

    sections = {
        name: info.annotation
        for name, info in GhafSettings.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }
    lines = [
        "# Settings",
        "",
        "Generated from `ghaf.settings.GhafSettings`. Sources, highest first: arguments "
        "(`ghaf --home ...`, `load_settings(home=...)`), `GHAF_*` environment variables, then "
        "`ghaf.toml` in the home. A bad value stops start-up with one line naming the key, "
        "the value and what is accepted (exit code 2).",
        "",
        "In `ghaf.toml` a top-level key is written as is and a dotted key goes in its "
        "section: `security.encrypt_artifacts` is `encrypt_artifacts` under `[security]`. "
        "Mappings and lists given as environment variables are JSON, e.g. "
        '`GHAF_IDENTITY__ROLE_MAPPING=\'{"ml-team": ["fraud:data_scientist"]}\'`.',
        "",
    ]
    rows = list(setting_rows())
    lines += [
        f"{len(rows)} settings.",
        "",
        "| setting | environment variable | type | default | description |",
        "|---|---|---|---|---|",
    ]
    for key, env, kind, default, description in rows:
        lines.append(
            f"| {code(key)} | {code(env)} | {code(kind)} | {code(default)} | {cell(description)} |"
        )
    lines += ["", "## Sections", ""]
    for name, model in sections.items():
        doc = inspect.getdoc(model) or ""
        lines.append(f"- `[{name}]`: {cell(doc)}")
    return "\n".join(lines) + "\n"


# CLI -------------------------------------------------------------------------------


def cli_commands() -> Iterator[tuple[str, Any]]:
    """(full name, click command) of every ``ghaf`` command, groups before their members."""
    from ghaf.cli.main import COMMANDS, load_command

    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any]]:
        yield prefix, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if not getattr(sub, "hidden", False):
                yield from walk(f"{prefix} {name}", sub)

    for name, target, _ in COMMANDS:
        yield from walk(f"ghaf {name}", load_command(name, target))


def _param_row(param: Any) -> str:
    names = ", ".join(param.opts + param.secondary_opts) if param.opts else param.name
    if param.param_type_name == "argument":
        names = param.name.upper()
    help_text = getattr(param, "help", None) or ""
    default = param.default
    shown = "" if default in (None, (), [], False) or callable(default) else code(default)
    required = "yes" if param.required else ""
    return f"| {code(names)} | {cell(help_text)} | {shown} | {required} |"


def command_help(command: Any) -> str:
    """The command's help text as shown by ``--help`` (Typer's markup removed)."""
    text = inspect.cleandoc(command.help or "")
    return re.sub(r"\[/?[a-z ]+\]", "", text)


@page("reference/cli.md")
def cli_page() -> str:
    """Every ``ghaf`` command: what it does, its arguments and options."""
    from ghaf.cli.main import app

    root = typer_root(app)
    lines = [
        "# CLI",
        "",
        "Generated from the Typer apps named in `ghaf.cli.main.COMMANDS`. Every command "
        "also answers `--help`. Errors are one line on stderr and an exit code "
        "([exit codes](errors.md)).",
        "",
        "## ghaf",
        "",
        "Options every command takes, given before the command (`ghaf --home /srv/ghaf doctor`):",
        "",
        "| option | help | default | required |",
        "|---|---|---|---|",
    ]
    lines += [_param_row(p) for p in root.params if p.name != "help"]
    for name, command in cli_commands():
        depth = min(name.count(" ") + 1, 4)
        lines += ["", f"{'#' * depth} {name}", ""]
        usage = " ".join(command.collect_usage_pieces(_context(command, name)))
        lines += [f"```\n{name} {usage}\n```", "", prose(command_help(command)), ""]
        params = [p for p in command.params if p.name != "help"]
        if params and not getattr(command, "commands", None):
            lines += ["| argument / option | help | default | required |", "|---|---|---|---|"]
            lines += [_param_row(p) for p in params]
    return "\n".join(lines) + "\n"


def typer_root(app: Any) -> Any:
    import typer

    return typer.main.get_group(app)


def _context(command: Any, name: str) -> Any:
    import click

    return click.Context(command, info_name=name)


# Errors and exit codes ---------------------------------------------------------------


def command_exit_codes() -> list[tuple[str, str]]:
    """(command, sentence) for each command whose help names its own exit codes."""
    found = []
    for name, command in cli_commands():
        text = " ".join(command_help(command).split())
        first = text.split(". ")[0]
        if re.search(r"\bexits? \d+", first):
            found.append((name, first.rstrip(".")))
    return found


def exit_code_table() -> str:
    """The CLI's exit codes, from ``ghaf.cli.exit_codes.EXIT_CODES`` and the commands' help."""
    from ghaf.cli.exit_codes import EXIT_CODES

    lines = [
        "| exit code | meaning |",
        "|---|---|",
        "| 0 | success |",
        "| 1 | any other Ghaf error; see also the commands below |",
    ]
    for kind, exit_code in EXIT_CODES:
        doc = (inspect.getdoc(kind) or "").splitlines()[0]
        lines.append(f"| {exit_code} | `{kind.__name__}`: {cell(doc)} |")
    lines += [
        "",
        "Commands whose result is also an exit code (from their help):",
        "",
    ]
    lines += [f"- `{name}`: {sentence}." for name, sentence in command_exit_codes()]
    return "\n".join(lines)


@page("reference/errors.md")
def errors_page() -> str:
    """Exit codes, HTTP statuses and the error tree."""
    import ghaf.errors
    from ghaf.http_status import HTTP_STATUSES

    tree = (inspect.getdoc(ghaf.errors) or "").split("::", 1)[-1].split("\n\n")[1]
    lines = [
        "# Errors, exit codes and HTTP statuses",
        "",
        "Generated from `ghaf.errors`, `ghaf.cli.exit_codes.EXIT_CODES` and "
        "`ghaf.http_status.HTTP_STATUSES`. Every error Ghaf raises on purpose is a "
        "`GhafError` with a one-line headline and, often, a hint saying how to fix it. Each "
        "also inherits the matching built-in, so `except ValueError` still catches a "
        "`ConfigError`.",
        "",
        "## The error tree",
        "",
        "```",
        inspect.cleandoc(tree),
        "```",
        "",
        "## Exit codes (CLI)",
        "",
        "The first matching row wins, so a subclass takes its parent's code. Usage errors "
        "that the command line parser finds (an unknown option, a missing argument) exit 2.",
        "",
        exit_code_table(),
        "",
        "## HTTP statuses (servers)",
        "",
        "The first matching row wins; any other `GhafError` is a 500. A request without a "
        "valid credential is a 401; over the rate limit, a 429. Control-plane errors are "
        "`application/problem+json` (RFC 9457); inference errors use the Open Inference "
        "Protocol's error body.",
        "",
        "| error | HTTP status |",
        "|---|---|",
    ]
    lines += [f"| `{kind.__name__}` | {status} |" for kind, status in HTTP_STATUSES]
    lines += ["", "## Error classes", ""]
    for name, obj in sorted(vars(ghaf.errors).items()):
        if isinstance(obj, type) and issubclass(obj, ghaf.errors.GhafError):
            bases = ", ".join(b.__name__ for b in obj.__bases__)
            lines.append(f"- `{name}({bases})`: {cell(inspect.getdoc(obj) or '')}")
    return "\n".join(lines) + "\n"


# Policy formats ----------------------------------------------------------------------


def model_rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, description) of a pydantic model's fields, nested ones dotted."""
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        nested = [
            arg
            for arg in (annotation, *typing.get_args(annotation))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        doc = info.description or ""
        if nested and typing.get_origin(annotation) is not dict:
            yield key, type_name(annotation), default_of(info), doc or _first_line(nested[0])
            yield from model_rows(nested[0], f"{key}.")
            continue
        yield key, type_name(annotation), default_of(info), doc


def _first_line(obj: Any) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")


def _model_table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [
        f"| {code(key)} | {code(kind)} | {code(default)} | {cell(doc)} |"
        for key, kind, default, doc in model_rows(model)
    ]
    return lines


@page("reference/policies.md")
def policies_page() -> str:
    """The gate policy and release policy YAML formats, from their models."""
    from ghaf.evaluation.policy import EXAMPLE_POLICY, Bound, GatePolicy
    from ghaf.registry.release import DEFAULT_POLICY, ReleasePolicy

    lines = [
        "# Policy formats",
        "",
        "Generated from the models that parse them; an unknown key is refused with its "
        "file and line.",
        "",
        "## Gate policy",
        "",
        f"`{GatePolicy.__module__}.GatePolicy`: {_first_line(GatePolicy)} "
        "`ghaf gate example` prints this example:",
        "",
        "```yaml",
        EXAMPLE_POLICY.rstrip(),
        "```",
        "",
        *_model_table(GatePolicy),
        "",
        f"`metrics` and `fairness` map a name to a bound: {_first_line(Bound)}",
        "",
        "## Release policy",
        "",
        f"`{ReleasePolicy.__module__}.ReleasePolicy`: {_first_line(ReleasePolicy)} "
        "`ghaf policy release show --default` prints the built-in one:",
        "",
        "```yaml",
        DEFAULT_POLICY.rstrip(),
        "```",
        "",
        *_model_table(ReleasePolicy),
    ]
    return "\n".join(lines) + "\n"


# Roles -------------------------------------------------------------------------------


@page("reference/roles.md")
def roles_page() -> str:
    """The roles of the built-in RBAC policy (``ghaf/security/policy.yaml``)."""
    import yaml

    path = ROOT / "src" / "ghaf" / "security" / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    header = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    body = yaml.safe_load(text)
    lines = [
        "# Roles",
        "",
        "Generated from the built-in RBAC policy, `src/ghaf/security/policy.yaml` "
        "(`ghaf roles roles` prints the same). Its own notes:",
        "",
        "```text",
        *header,
        "```",
        "",
        "| role | description | allows | denies |",
        "|---|---|---|---|",
    ]
    for name, role in body["roles"].items():
        allows = ", ".join(code(a) for a in role.get("allow", []))
        denies = ", ".join(code(d) for d in role.get("deny", []))
        lines.append(f"| `{name}` | {cell(role.get('description', ''))} | {allows} | {denies} |")
    return "\n".join(lines) + "\n"


# HTTP API ----------------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """The control plane's OpenAPI document, from an app over a fresh temporary home."""
    from ghaf.home import init_home
    from ghaf.server.app import create_app
    from ghaf.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="ghaf-docs-") as home:
        platform = init_home(load_settings(home=home))
        try:
            document: dict[str, Any] = create_app(platform).app.openapi()
        finally:
            platform.close()
    return document


_OPENAPI: dict[str, Any] = {}


def cached_openapi() -> dict[str, Any]:
    """One document per build (making a home takes seconds)."""
    if not _OPENAPI:
        _OPENAPI.update(openapi_document())
    return _OPENAPI


def _schema_name(schema: dict[str, Any] | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list of {_schema_name(schema.get('items'))}"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    return str(schema.get("type", "object"))


@page("reference/http.md")
def http_page() -> str:
    """Every route of the control plane, grouped by tag, with its governed action."""
    document = cached_openapi()
    lines = [
        "# HTTP API",
        "",
        f"Generated from the OpenAPI {document['openapi']} document of `ghaf server` "
        f"(API version {document['info']['version']}); the whole document is "
        "[openapi.json](openapi.json), and a running server serves it at `/openapi.json` "
        "and renders it at `/docs`. Every route needs `Authorization: Bearer <token or "
        "JWT>` and names the governed action it performs (`x-ghaf-action`); refusals are "
        "`application/problem+json` ([statuses](errors.md#http-statuses-servers)). "
        "`/health` and `/health/ready` answer without a credential.",
        "",
        "| method | path | action | summary |",
        "|---|---|---|---|",
    ]
    operations = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            operations.append((op.get("tags", ["other"])[0], path, method.upper(), op))
    for _, path, method, op in operations:
        lines.append(
            f"| {method} | {code(path)} | {code(op.get('x-ghaf-action', ''))} "
            f"| {cell(op.get('summary', ''))} |"
        )
    current = None
    for tag, path, method, op in sorted(operations, key=lambda o: o[0]):
        if tag != current:
            lines += ["", f"## {tag}", ""]
            current = tag
        lines += [f"### {method} {code(path)}", ""]
        lines += [f"Action: `{op.get('x-ghaf-action', '')}`.", ""]
        if op.get("description"):
            lines += [cell(op["description"]), ""]
        params = op.get("parameters", [])
        if params:
            lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
            for p in params:
                lines.append(
                    f"| {code(p['name'])} | {p['in']} | {code(_schema_name(p.get('schema')))} "
                    f"| {'yes' if p.get('required') else ''} | {cell(p.get('description', ''))} |"
                )
            lines.append("")
        body = op.get("requestBody", {}).get("content", {})
        for media, content in body.items():
            lines += [f"Body ({media}): {code(_schema_name(content.get('schema')))}", ""]
        ok = [s for s in op.get("responses", {}) if s.startswith("2")]
        for status in ok:
            response = op["responses"][status]
            schemas = [_schema_name(c.get("schema")) for c in response.get("content", {}).values()]
            shown = f": {code(schemas[0])}" if schemas and schemas[0] else ""
            lines += [f"Answer {status}{shown}.", ""]
    lines += ["## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [cell(schema["description"]), ""]
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if props:
            lines += ["| field | type | required | description |", "|---|---|---|---|"]
            for field, spec in props.items():
                needed = "yes" if field in required else ""
                lines.append(
                    f"| {code(field)} | {code(_schema_name(spec))} "
                    f"| {needed} | {cell(spec.get('description', ''))} |"
                )
            lines.append("")
    return "\n".join(lines) + "\n"


# README ------------------------------------------------------------------------------


def readme_with_exit_codes(text: str) -> str:
    """``text`` (README.md) with the generated exit-code table between its markers."""
    start, end = text.index(EXIT_START), text.index(EXIT_END)
    return text[: start + len(EXIT_START)] + "\n" + exit_code_table() + "\n" + text[end:]


# MkDocs hook -------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Add every generated page, and ``reference/openapi.json``, to the site."""
    from mkdocs.structure.files import File

    for path, render in PAGES.items():
        files.append(File.generated(config, path, content=render()))
    body = json.dumps(cached_openapi(), indent=2, sort_keys=True)
    files.append(File.generated(config, "reference/openapi.json", content=body))
    return files


def main(argv: list[str]) -> int:
    """``--readme`` rewrites README.md's exit codes; ``--print PATH`` prints one page."""
    if argv[:1] == ["--readme"]:
        README.write_text(readme_with_exit_codes(README.read_text(encoding="utf-8")))
        return 0
    if argv[:1] == ["--print"] and len(argv) == 2 and argv[1] in PAGES:
        sys.stdout.write(PAGES[argv[1]]())
        return 0
    sys.stderr.write(f"usage: docs_reference.py --readme | --print {{{','.join(PAGES)}}}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
