"""``ghaf gate``: check a model against a gate policy; store, version and attach policies.

Every command that prints data takes ``--output json``; the JSON shapes are in each
command's help. A failing ``check`` still exits 7 after printing its JSON.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ghaf.cli.context import CliState, state
from ghaf.cli.output import format_minute
from ghaf.errors import InvalidInputError, PolicyViolationError

if TYPE_CHECKING:
    from ghaf.evaluation.policy import GatePolicy

app = typer.Typer(
    help="Evaluation gates for CI/CD, and the gate policies promotion enforces.",
    no_args_is_help=True,
)
policies = typer.Typer(
    help="Gate policies stored in the registry: versioned YAML attached to models or projects.",
    no_args_is_help=True,
)
app.add_typer(policies, name="policies")


class Output(StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for scripts.")
]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Attach to this registered model.")
]
ProjectOption = Annotated[
    str | None, typer.Option("--project", help="Attach to every model of this project.")
]


def _json(body: Any) -> None:
    typer.echo(json.dumps(body, indent=2, sort_keys=True))


def _resolve_policy(cli: CliState, policy: str) -> GatePolicy:
    """A YAML file when ``policy`` names one (or looks like a path), else a stored policy."""
    from ghaf.evaluation.policy import load_policy
    from ghaf.registry.gate_policies import get_gate_policy

    path = Path(policy)
    if path.is_file() or path.suffix in (".yaml", ".yml") or "/" in policy:
        return load_policy(path)
    return get_gate_policy(cli.platform(), policy).policy()


@app.command("check")
def check(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="MODEL:VERSION, MODEL@alias or a model directory.")],
    policy: Annotated[
        str,
        typer.Option("--policy", help="Gate policy YAML file, or a stored policy NAME[:VERSION]."),
    ],
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write the results as JUnit XML here.")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Check every rule of the policy; exits 7 if any fails. Nothing is stored.

    JSON: {"policy", "subject", "passed", "notes": [str], "rules": [{"rule", "passed",
    "threshold", "measured", "reason"}]}.
    """
    from dataclasses import asdict

    from ghaf.evaluation.gates import check_gate
    from ghaf.registry.gates import evidence_for

    cli = state(ctx)
    rules = _resolve_policy(cli, policy)
    evidence = evidence_for(cli.platform(), target)
    report = check_gate(rules, evidence)
    if junit is not None:
        junit.write_text(report.to_junit())
    if output is Output.json:
        _json(
            {
                "policy": report.policy,
                "subject": report.subject,
                "passed": report.passed,
                "notes": evidence.notes,
                "rules": [asdict(r) for r in report.results],
            }
        )
    else:
        table = Table(
            "rule", "threshold", "measured", "result", "reason",
            title=f"gate {report.policy}: {report.subject}",
        )  # fmt: skip
        for result in report.results:
            table.add_row(
                result.rule,
                result.threshold or "",
                _measured(result.measured),
                "pass" if result.passed else "[red]FAIL[/]",
                escape(result.reason),
            )
        cli.console.print(table)
        for note in evidence.notes:
            cli.console.print(f"note: {note}", highlight=False)
        for failure in report.failures:
            cli.console.print(f"FAIL {failure.rule}: {failure.reason}", highlight=False)
    if not report.passed:
        raise PolicyViolationError(
            f"gate {report.policy} failed for {report.subject}: "
            f"{len(report.failures)} of {len(report.results)} rules",
            hint="each failing rule is listed above",
        )
    if output is Output.table:
        cli.console.print(f"gate {report.policy} passed ({len(report.results)} rules)")


def _measured(value: float | str | None) -> str:
    if value is None:
        return "missing"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@app.command("example")
def example() -> None:
    """Print an example gate policy."""
    from ghaf.evaluation.policy import EXAMPLE_POLICY

    typer.echo(EXAMPLE_POLICY, nl=False)


@app.command("verdicts")
def verdicts(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL:VERSION or MODEL@alias.")],
    every: Annotated[
        bool, typer.Option("--all", help="Every verdict, not only each policy's newest.")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """The gate verdicts stored on a model version (what its model card shows).

    JSON: [{"policy", "policy_version", "subject", "passed", "purpose", "evaluated_by",
    "evaluated_at", "rules": [{"rule", "passed", "threshold", "measured", "reason"}]}].
    """
    from ghaf.registry.gates import gate_verdicts

    cli = state(ctx)
    found = gate_verdicts(cli.platform(), ref, latest=not every)
    if output is Output.json:
        _json([v.to_dict() for v in found])
        return
    if not found:
        cli.console.print(f"no gate verdicts stored on {ref}", highlight=False)
    for verdict in found:
        table = Table(
            "rule", "threshold", "measured", "result",
            title=f"{verdict.policy}:{verdict.policy_version} "
            f"{'passed' if verdict.passed else 'FAILED'} for {verdict.purpose} "
            f"({verdict.evaluated_at:%Y-%m-%d %H:%M} UTC, {verdict.evaluated_by})",
        )  # fmt: skip
        for rule in verdict.rules:
            table.add_row(
                rule.rule,
                rule.threshold or "",
                _measured(rule.measured),
                "pass" if rule.passed else "[red]FAIL[/]",
            )
        cli.console.print(table)


@policies.command("add")
def policies_add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The policy's YAML file.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Store under this name (default: its name:).")
    ] = None,
    model: ModelOption = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Store a policy file: version 1, or the next version when the name exists.

    With --model or --project the new version is attached there too (one transaction).
    JSON: the stored version, as `ghaf gate policies show`.
    """
    from ghaf.evaluation.policy import parse_policy, read_policy_text

    cli = state(ctx)
    text = read_policy_text(file)
    client = cli.remote()
    if client is not None:
        parse_policy(text, str(file))  # the file's errors, named as on the home
        stored = client.add_gate_policy(
            text,
            project=project or cli.settings.project,
            name=name,
            model=model,
            attach_project=project is not None,
        )
    else:
        from ghaf.registry.gate_policies import add_gate_policy

        stored = add_gate_policy(
            cli.platform(), cli.actor(), text, name=name, source=str(file), model=model,
            project=project,
        ).to_dict()  # fmt: skip
    if output is Output.json:
        _json(stored)
        return
    cli.console.print(
        f"gate policy {stored['name']}:{stored['version']} stored (project {stored['project']})",
        highlight=False,
    )
    for attached in stored["attachments"]:
        where = f"{attached['kind']} {attached['target']}"
        if attached["policy_version"] == stored["version"]:
            cli.console.print(f"attached to {where}", highlight=False)
        else:
            cli.console.print(
                f"{where} still uses v{attached['policy_version']}; move it with: ghaf gate "
                f"policies attach {stored['name']} --{attached['kind']} {attached['target']}",
                highlight=False,
            )


@policies.command("list")
def policies_list(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """Every stored policy at its newest version, with where it is attached (against a
    server: those of your projects).

    JSON: a list of policies, each as `ghaf gate policies show`.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = client.gate_policies()
    else:
        from ghaf.registry.gate_policies import list_gate_policies

        found = [p.to_dict() for p in list_gate_policies(cli.platform())]
    if output is Output.json:
        _json(found)
        return
    table = Table("name", "latest", "project", "attached to", "by", "created")
    for stored in found:
        table.add_row(
            stored["name"],
            str(stored["latest"]),
            stored["project"],
            _attachments(stored),
            stored["created_by"],
            format_minute(stored["created_at"]),
        )
    cli.console.print(table)


def _attachments(stored: dict[str, Any]) -> str:
    return ", ".join(
        f"{a['kind']} {a['target']} (v{a['policy_version']})" for a in stored["attachments"]
    )


def _stored(cli: CliState, ref: str) -> dict[str, Any]:
    client = cli.remote()
    if client is not None:
        return client.gate_policy(ref)
    from ghaf.registry.gate_policies import get_gate_policy

    return get_gate_policy(cli.platform(), ref).to_dict()


@policies.command("show")
def policies_show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (newest version) or NAME:VERSION.")],
    output: OutputOption = Output.table,
) -> None:
    """Show one version of a stored policy: its YAML and where the policy is attached.

    JSON: {"name", "version", "latest", "project", "created_by", "created_at", "text",
    "attachments": [{"policy", "policy_version", "kind", "target", "project",
    "created_by", "created_at"}]}.
    """
    cli = state(ctx)
    stored = _stored(cli, ref)
    if output is Output.json:
        _json(stored)
        return
    cli.console.print(
        f"# gate policy {stored['name']}:{stored['version']} (latest v{stored['latest']}, "
        f"project {stored['project']}, by {stored['created_by']} on "
        f"{format_minute(stored['created_at'])} UTC)",
        highlight=False,
        markup=False,
    )
    if stored["attachments"]:
        cli.console.print(f"# attached to: {_attachments(stored)}", highlight=False, markup=False)
    typer.echo(stored["text"], nl=not stored["text"].endswith("\n"))


@policies.command("attach")
def policies_attach(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (its newest version) or NAME:VERSION.")],
    model: ModelOption = None,
    project: ProjectOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Require a model (or every model of a project) to pass the policy to be promoted.

    The version is pinned; attaching again moves the pin. JSON: {"policy",
    "policy_version", "kind", "target", "project", "created_by", "created_at"}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        # As the service says it, before a request.
        if model is None and project is None:
            raise InvalidInputError(
                "attach needs a model or a project", hint="pass --model NAME or --project NAME"
            )
        if model is not None and project is not None:
            raise InvalidInputError(
                "give a model or a project, not both", hint="pass either --model or --project"
            )
        attached = client.attach_gate_policy(ref, model=model, project=project)
    else:
        from ghaf.registry.gate_policies import attach_gate_policy

        attached = attach_gate_policy(
            cli.platform(), cli.actor(), ref, model=model, project=project
        ).to_dict()
    if output is Output.json:
        _json(attached)
        return
    cli.console.print(
        f"attached gate policy {attached['policy']}:{attached['policy_version']} to "
        f"{attached['kind']} {attached['target']}",
        highlight=False,
    )
