"""The error tree keeps the built-in bases; exit codes come from one table; logs mask secrets."""

from __future__ import annotations

import io
import json

import pytest

from ghaf.cli.exit_codes import EXIT_CODES, exit_code_for
from ghaf.errors import (
    ConfigError,
    GhafError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
    PermissionDeniedError,
)
from ghaf.logs import bind_ids, configure_logging, get_logger


def test_errors_are_also_builtin_exceptions() -> None:
    assert issubclass(ConfigError, ValueError)
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(PermissionDeniedError, PermissionError)
    assert issubclass(MissingDependencyError, ImportError)


def test_headline_and_hint() -> None:
    error = NotFoundError("dataset 'tx' does not exist", hint="ghaf data versions")
    assert error.headline == "dataset 'tx' does not exist"
    assert "ghaf data versions" in str(error)
    missing = MissingDependencyError("redis", "redis")
    assert missing.hint == "pip install 'ghaf[redis]'"


def test_exit_code_table_is_unique_and_complete() -> None:
    codes = [code for _, code in EXIT_CODES]
    assert len(codes) == len(set(codes))
    assert exit_code_for(ConfigError("x")) == 2
    assert exit_code_for(GhafError("x")) == 1
    for kind, code in EXIT_CODES:
        assert exit_code_for(
            kind("x") if kind is not MissingDependencyError else kind("p", "e")
        ) == (code)


@pytest.mark.parametrize("fmt", ["json", "human"])
def test_logs_carry_ids_and_mask_secrets(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging(fmt, "INFO", stream=stream)  # type: ignore[arg-type]
    log = get_logger("test")
    with bind_ids(request_id="req-123"):
        log.info(
            "connected",
            url="postgresql://ghaf:hunter2@db/ghaf",
            api_token="tok_abcdef",
            rows=3,
        )
    log.debug("hidden")
    output = stream.getvalue()
    assert "hunter2" not in output and "tok_abcdef" not in output
    assert "req-123" in output
    assert "hidden" not in output
    if fmt == "json":
        line = json.loads(output.strip().splitlines()[0])
        assert line["request_id"] == "req-123"
        assert line["url"] == "postgresql://ghaf:***@db/ghaf"
        assert line["event"] == "connected" and line["level"] == "info"


def test_http_status_table() -> None:
    from ghaf.http_status import http_status_for

    assert http_status_for(InvalidInputError("x")) == 400
    assert http_status_for(NotFoundError("x")) == 404
    assert http_status_for(PermissionDeniedError("x")) == 403
    assert http_status_for(GhafError("x")) == 500
