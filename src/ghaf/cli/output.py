"""How commands print: tables for people, one stable JSON document for scripts.

``--output json`` prints exactly one JSON document on standard output (the shapes are
the HTTP API's: the same field names, ISO-8601 times), so a script reads the same thing
in embedded and remote mode. Tables never cut a value short when piped: without a
terminal (and without ``COLUMNS``) they are as wide as their widest value.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console


class Output(StrEnum):
    table = "table"
    json = "json"


OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for scripts.")
]


def console() -> Console:
    """The console commands print to: a piped one never truncates a cell."""
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        return Console(width=100_000)
    return Console()


_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def to_jsonable(value: Any) -> Any:
    """``value`` (dataclasses, datetimes, tuples...) as plain JSON types, as the HTTP API
    writes them (UTC times end in ``Z``)."""
    return orjson.loads(orjson.dumps(value, default=_default, option=_OPTIONS))


def format_minute(iso: str) -> str:
    """``YYYY-MM-DD HH:MM`` of an ISO-8601 time, for tables (the JSON keeps the full time)."""
    return iso[:16].replace("T", " ")


def emit_json(document: Any) -> None:
    """Print ``document`` as one JSON document on standard output."""
    sys.stdout.write(orjson.dumps(document, default=_default, option=_OPTIONS).decode() + "\n")
    sys.stdout.flush()
