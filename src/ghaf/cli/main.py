"""The ``ghaf`` command: a thin door onto the services; errors become one line and an exit code.

Startup is lazy: ``ghaf --help`` reads the table below and imports no command module; a
command's module (and whatever it pulls in: the platform, SQLAlchemy, pyarrow...) is
imported only when that command runs or its own ``--help`` is asked for.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from ghaf.cli.exit_codes import exit_code_for
from ghaf.errors import GhafError

if TYPE_CHECKING:  # typer vendors click; its classes are the ones TyperGroup speaks
    from typer._click import Command, Context, HelpFormatter

COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "init",
        "ghaf.cli.install:init",
        "Create the platform home and migrate the metadata store (safe to re-run).",
    ),
    (
        "doctor",
        "ghaf.cli.install:doctor",
        "Check every configured backend; say what is wrong and how to fix it.",
    ),
    (
        "gc",
        "ghaf.cli.gc:gc",
        "Remove crash leftovers: scratch directories of processes that are gone, files in "
        "<home>/tmp that nothing has touched for an hour, and partial artifact writes.",
    ),
    (
        "backup",
        "ghaf.cli.backup:backup",
        "Back the home up: metadata, artifacts, wrapped keys and audit checkpoints.",
    ),
    (
        "restore",
        "ghaf.cli.backup:restore",
        "Restore a backup into a fresh home, database and artifact store; exit 8 if it fails "
        "to verify.",
    ),
    ("version", "ghaf.cli.install:version", "Print Ghaf's version."),
    (
        "demo",
        "ghaf.cli.demo:demo",
        "Run every stage of the scenario end to end and print a summary.",
    ),
    ("server", "ghaf.cli.server:server", "Run the governed control-plane server."),
    ("ui", "ghaf.cli.ui:app", "The web UI that ghaf server serves under /ui/."),
    (
        "serve",
        "ghaf.cli.serve:serve",
        "Serve models over the Open Inference Protocol v2 (and POST /predict, /metrics).",
    ),
    (
        "predict",
        "ghaf.cli.serve:predict",
        "Score a file or dataset in batch: streamed, parallel, with progress; output atomically.",
    ),
    (
        "verify",
        "ghaf.cli.verify:verify",
        "Verify a model's files against its signature, and what it is signed for; exit 8 on "
        "any mismatch (a registered version must be signed for its own name, version and project).",
    ),
    (
        "whoami",
        "ghaf.cli.identity:whoami",
        "Show who you act as, how that was proven, and your roles.",
    ),
    (
        "login",
        "ghaf.cli.identity:login",
        "Log in to the identity provider and keep the access token (0600) in the home.",
    ),
    ("admin", "ghaf.cli.admin:app", "The home: its owner and handing it over."),
    ("projects", "ghaf.cli.projects:app", "Projects: the units of ownership."),
    ("runs", "ghaf.cli.runs:app", "Tracked runs: list, show, compare, download."),
    (
        "train",
        "ghaf.cli.train:train",
        "Train a model on a dataset version as a tracked run, in this process or "
        "data-parallel on Ray Train (--workers N --on ray://HOST:PORT).",
    ),
    ("models", "ghaf.cli.models:app", "Model registry: versions, aliases, approvals, cards."),
    (
        "data",
        "ghaf.cli.data:app",
        "Datasets: ingest, validate, list, versions, show, preview, diff.",
    ),
    (
        "lineage",
        "ghaf.cli.lineage:app",
        "Lineage of datasets, transforms, runs, models, deployments.",
    ),
    ("keys", "ghaf.cli.keys:app", "Keys: artifact encryption keys and trusted signing keys."),
    (
        "erase",
        "ghaf.cli.erase:app",
        "Right to erasure: a data subject or a dataset, crypto-shredded, with a signed "
        "certificate.",
    ),
    (
        "retention",
        "ghaf.cli.retention:app",
        "Retention: rules per classification, and runs that remove what expired.",
    ),
    ("audit", "ghaf.cli.audit:app", "Audit: the hash-chained record of every operation."),
    (
        "compliance",
        "ghaf.cli.compliance:app",
        "Compliance: ISO 27001 Annex A controls mapped to live evidence, with an SBOM.",
    ),
    (
        "gate",
        "ghaf.cli.gate:app",
        "Evaluation gates for CI/CD, and the gate policies promotion enforces.",
    ),
    ("pipelines", "ghaf.cli.pipelines:app", "Pipelines: runs, steps and their logs."),
    ("jobs", "ghaf.cli.jobs:app", "The job queue: submit, list, cancel, priority, work."),
    (
        "quotas",
        "ghaf.cli.quotas:app",
        "Project quotas: CPU-hours, GPU-hours, concurrent jobs, fair-share weight.",
    ),
    (
        "deployments",
        "ghaf.cli.deployments:app",
        "Deployments: which versions a name serves, their traffic split, shadow and status.",
    ),
    (
        "experiments",
        "ghaf.cli.experiments:app",
        "A/B experiments: analyze a table of units, write the HTML report.",
    ),
    ("monitor", "ghaf.cli.monitor:app", "Monitoring: drift, data quality, scheduled monitors."),
    (
        "alerts",
        "ghaf.cli.alerts:app",
        "Alerts: fire (JSON in), list, resolve, and deliver what receivers are owed.",
    ),
    (
        "incidents",
        "ghaf.cli.incidents:app",
        "Incidents: priority, state, assignment and timeline of what alerts raised.",
    ),
    (
        "slo",
        "ghaf.cli.slo:app",
        "SLOs: define, list, burn-rate status (fires alerts), export Prometheus rules.",
    ),
    (
        "cost",
        "ghaf.cli.cost:app",
        "Cost: usage x the price sheet by project, model, deployment or user; record usage.",
    ),
    ("features", "ghaf.cli.features:app", "Feature store: definitions, materialization, serving."),
    ("tokens", "ghaf.cli.tokens:app", "API tokens: random, shown once, stored hashed."),
    ("roles", "ghaf.cli.roles:app", "Roles bound to principals per project (RBAC)."),
    ("policy", "ghaf.cli.policy:app", "Explain what the policies decide."),
    ("certs", "ghaf.cli.certs:app", "TLS certificates."),
)
"""Every ``ghaf`` command: its name, ``module:attribute`` and the help line ``ghaf --help`` shows.

The attribute is a Typer group or an undecorated command function; this table is the
only place they join the root app, so an import never adds a command as a side effect.
A test keeps each help line the opening of the command's own first paragraph.
"""

_LISTING = "ghaf.cli.main.listing"
"""``ctx.meta`` key set while the root help lists the commands: stubs, no imports."""


def load_command(name: str, target: str) -> Command:
    """Import ``module:attribute`` and turn it into the click command named ``name``."""
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    found = getattr(module, attribute)
    if isinstance(found, typer.Typer):
        # get_group, not get_command: the latter adds --install-completion to every group
        command: Command = typer.main.get_group(found)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The root group: knows its commands from :data:`COMMANDS`, imports one when it runs."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._targets = {name: target for name, target, _ in COMMANDS}
        # Stubs carry the name and help line for listings and "did you mean" suggestions.
        self.commands = {
            name: TyperCommand(name, help=help_line) for name, _, help_line in COMMANDS
        }

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        target = self._targets.get(cmd_name)
        if target is not None and not ctx.meta.get(_LISTING):
            self.commands[cmd_name] = load_command(cmd_name, target)
            del self._targets[cmd_name]  # only once loaded: a failed load leaves no stub to run
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            del ctx.meta[_LISTING]


app = typer.Typer(
    name="ghaf",
    cls=LazyGroup,
    help="Ghaf: a governed MLOps platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="Platform home (default: GHAF_HOME or ~/.ghaf).")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="human or json log lines.")
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO...")] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Act with this credential (a Ghaf API token or OIDC JWT; or GHAF_TOKEN). "
            "Default: the home's owner, proven by the OS account.",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Work against this `ghaf server` (or GHAF_URL) instead of a local home.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build the settings once and hand them to the command."""
    from ghaf.cli.context import CliState
    from ghaf.logs import bind_ids, configure_logging, new_id
    from ghaf.settings import load_settings

    # Bound here, not in run(): structlog costs ~80 ms that `ghaf --help` need not pay.
    ctx.with_resource(bind_ids(request_id=new_id()))
    settings = load_settings(
        home=home, log_format=log_format, log_level=log_level, token=token, url=url
    )
    configure_logging(settings.log_format, settings.log_level)
    ctx.obj = CliState(settings)
    ctx.call_on_close(ctx.obj.close)
    if settings.asserted_identity:  # refused (and audited) before any command runs
        ctx.obj.actor()


def run() -> None:
    """Entry point: run the app, turning Ghaf errors into one line and an exit code.

    Click handles usage errors itself (exit 2); everything Ghaf raises on purpose
    becomes ``error: <headline>`` plus a hint line, with the code from the one table.
    A module of an extra that is not installed becomes the
    :class:`~ghaf.errors.MissingDependencyError` naming that extra.
    """
    try:
        app()
    except GhafError as exc:
        _fail(exc)
    except ModuleNotFoundError as exc:
        from ghaf.deps import missing_dependency

        missing = missing_dependency(exc)
        if missing is None:  # not an optional dependency: a bug, keep its traceback
            raise
        _fail(missing)


def _fail(exc: GhafError) -> NoReturn:
    err = Console(stderr=True)
    headline = escape(exc.headline)  # a hint like `[a, b]` is text, not markup
    err.print(f"[bold red]error:[/] {headline}", highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"  hint: {escape(exc.hint)}", highlight=False, soft_wrap=True)
    sys.exit(exit_code_for(exc))
