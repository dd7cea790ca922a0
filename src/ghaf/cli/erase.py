"""``ghaf erase``: right to erasure (a data subject or a dataset) and its certificates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from ghaf.cli.context import CliState, state
from ghaf.cli.output import Output, OutputOption, emit_json
from ghaf.errors import IntegrityError, InvalidInputError, NotFoundError

app = typer.Typer(
    help="Right to erasure: a data subject or a dataset, crypto-shredded, with a signed "
    "certificate.",
    no_args_is_help=True,
)
CertificateOption = Annotated[
    Path | None,
    typer.Option("--certificate", help="Also write the signed certificate (JSON) to this file."),
]


def _finish(cli: CliState, document: dict[str, Any], output: Output, to: Path | None) -> None:
    if to is not None:
        to.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    if output is Output.json:
        emit_json(document)
        return
    body = document["certificate"]
    cli.console.print(
        f"erasure certificate {body['id']}: {len(body['destroyed'])} artifacts destroyed, "
        f"{len(body['rewritten'])} datasets rewritten, {len(body['online_views'])} online "
        f"views and {len(body['prediction_logs'])} prediction log files cleaned",
        highlight=False,
    )
    for entry in body["destroyed"]:
        cli.console.print(f"  destroyed {escape(entry['node'])} ({entry['method']})")
    for entry in body["rewritten"]:
        cli.console.print(
            f"  rewrote {escape(entry['from'])} -> {escape(entry['to'])} "
            f"(-{entry['rows_removed']} rows)"
        )
    for entry in body["review"]:
        cli.console.print(f"  review {escape(entry['node'])}: {escape(entry['reason'])}")
    if to is not None:
        cli.console.print(f"certificate written to {escape(str(to))}")


@app.command("subject")
def subject(
    ctx: typer.Context,
    key_column: Annotated[str, typer.Option("--key-column", help="Column naming the subject.")],
    value: Annotated[str, typer.Option("--value", help="The subject's value in that column.")],
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", help="Only this dataset (repeat; default: every dataset)."),
    ] = None,
    request_id_column: Annotated[
        list[str] | None,
        typer.Option(
            "--request-id-column",
            help="A column whose values are the subject's prediction request ids (repeat; "
            "beside retention.request_id_columns).",
        ),
    ] = None,
    certificate: CertificateOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Erase a data subject: every row where KEY-COLUMN = VALUE, in every dataset version,
    the online store and the prediction log; derived models are listed for review.

    JSON: the signed certificate {"certificate": {...}, "signature", "key"}.
    """
    cli = state(ctx)
    client = cli.remote()
    datasets, id_columns = list(dataset or []), list(request_id_column or [])
    if client is not None:
        document = client.post(
            "/erasure/subject",
            {
                "key_column": key_column,
                "value": value,
                "datasets": datasets,
                "request_id_columns": id_columns,
            },
        )
    else:
        from ghaf.privacy import erase_subject

        with cli.console.status("erasing"):
            document = erase_subject(
                cli.platform(),
                cli.actor(),
                key_column,
                value,
                datasets=datasets,
                request_id_columns=id_columns,
            )
    _finish(cli, document, output, certificate)


@app.command("dataset")
def dataset(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (every version) or NAME:VERSION.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    certificate: CertificateOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Destroy a dataset (or one version) and every dataset version derived from it.

    JSON: the signed certificate.
    """
    if not yes:
        raise InvalidInputError(
            f"erasing dataset {ref} destroys it and what was derived from it",
            hint="repeat with --yes",
        )
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        document = client.post("/erasure/dataset", {"dataset": ref})
    else:
        from ghaf.privacy import erase_dataset

        document = erase_dataset(cli.platform(), cli.actor(), ref)
    _finish(cli, document, output, certificate)


@app.command("list")
def list_(ctx: typer.Context, output: OutputOption = Output.table) -> None:
    """The erasure certificates, newest first.

    JSON: {"certificates": [{"id", "kind", "issued_at", "issued_by", "sha256"}]}.
    """
    cli = state(ctx)
    client = cli.remote()
    if client is not None:
        found = list(client.get("/erasure/certificates")["certificates"])
    else:
        from ghaf.privacy import list_certificates
        from ghaf.security.rbac import ALL_PROJECTS

        platform = cli.platform()
        platform.spine.authorizer.authorize(
            cli.actor(), "erasure.read", "erasure:home", ALL_PROJECTS
        )
        found = list_certificates(platform)
    if output is Output.json:
        emit_json({"certificates": found})
        return
    for item in found:
        cli.console.print(
            f"{item['id']}  {item['kind']:8}  {item['issued_at']}  {escape(item['issued_by'])}"
        )


@app.command("verify")
def verify(
    ctx: typer.Context,
    cert: Annotated[str, typer.Argument(help="A certificate file, or a certificate id.")],
    value: Annotated[
        str | None, typer.Option("--value", help="Also check it is for this subject value.")
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Check a certificate: its signature, its audit record, that what it destroyed no
    longer decrypts and what it rewrote verifies; exit 8 on any failure (on a home).

    JSON: {"id", "ok", "checks": [{"check", "ok", "detail"}]}.
    """
    cli = state(ctx)
    path = Path(cert)
    client = cli.remote()
    if client is not None:
        if path.exists():
            raise InvalidInputError(
                "against a server, verify a stored certificate by its id",
                hint="ghaf erase list shows the ids",
            )
        report = dict(client.get(f"/erasure/certificates/{cert}/verify"))
    else:
        from ghaf.privacy import get_certificate, verify_certificate

        platform = cli.platform()
        if path.exists():
            try:
                document = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"{cert} is not JSON", hint="pass the certificate file"
                ) from exc
        else:
            if len(cert) != 32:
                raise NotFoundError(f"no certificate file {cert}", hint="pass a file or an id")
            document = get_certificate(platform, cert)
        report = verify_certificate(platform, document, value=value)
    if output is Output.json:
        emit_json(report)
    else:
        for item in report["checks"]:
            mark = "ok  " if item["ok"] else "FAIL"
            cli.console.print(f"{mark} {item['check']}: {escape(item['detail'])}", highlight=False)
    if not report["ok"]:
        raise IntegrityError(f"erasure certificate {report['id']} does not verify")
