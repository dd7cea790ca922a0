"""What a log sink is: the Protocol each backend implements and the record it is given."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ghaf.errors import ConfigError


@dataclass(frozen=True)
class ShippedRecord:
    """One audit record as it leaves: its fields, its chain hashes and its JSON.

    ``doc`` is what ``ghaf audit export`` writes for the record (the canonical body plus
    ``prev_hash`` and ``record_hash``); ``seq`` and ``record_hash`` let a receiver drop a
    record it already has (a delivery cut before its acknowledgement is sent again).
    """

    seq: int
    ts: datetime
    actor: str
    action: str
    resource: str
    project: str
    outcome: str
    record_hash: str
    prev_hash: str
    doc: dict[str, Any]
    line: bytes
    """``doc`` as compact JSON with sorted keys (no newline)."""


class LogSink(Protocol):
    """A log system records are delivered to, in order.

    ``send_many`` returns only once the sink acknowledged every record given (the
    shipper then advances the sink's cursor past them) and raises otherwise; nothing is
    acknowledged in part.
    """

    kind: str
    """Short name for status and errors: ``syslog`` or ``http``."""

    def send_many(self, records: Sequence[ShippedRecord]) -> None:
        """Deliver ``records`` (ascending ``seq``) and wait for the acknowledgement.

        Raises:
            OSError: the sink could not be reached or did not acknowledge (retried).
        """
        ...

    def close(self) -> None:
        """Release connections (a sink may keep none between deliveries)."""
        ...


def sink_context(
    name: str, ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> ssl.SSLContext:
    """A client TLS context verifying the sink (``ca_file`` or the system's trust store),
    presenting a client certificate when one is given.

    Raises:
        ConfigError: a file cannot be read, naming the sink's setting.
    """
    where = f"audit_shipping.sinks.{name}"
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"setting {where}.ca_file = {str(ca_file)!r} cannot be read: {exc}",
            hint="point it at the PEM file of the CA that signed the sink's certificate",
        ) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"setting {where}.cert_file/key_file ({cert_file}, {key_file}) cannot be "
                f"loaded: {exc}",
                hint="check the paths and that the key matches the certificate",
            ) from exc
    return context
