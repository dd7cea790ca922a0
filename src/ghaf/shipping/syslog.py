"""Syslog over TLS: RFC 5424 messages in RFC 5425 octet-counted frames, acknowledged by
the receiver's TLS close_notify."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ghaf.errors import ConfigError
from ghaf.shipping.base import ShippedRecord, sink_context

if TYPE_CHECKING:
    from ghaf.settings import AuditSinkSettings

SEVERITY = {"allowed": 6, "failed": 3, "denied": 4}
"""Audit outcome -> syslog severity: informational, error, warning (RFC 5424 table 2)."""
BOM = b"\xef\xbb\xbf"
"""RFC 5424 marks a UTF-8 MSG with a byte order mark."""
NILVALUE = "-"


def _param(value: str) -> str:
    """An SD PARAM-VALUE: '"', '\\' and ']' escaped (RFC 5424 section 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printable(value: str, limit: int) -> str:
    """A header field: printable US-ASCII only, at most ``limit`` characters, never empty."""
    kept = "".join(c if "!" <= c <= "~" else "_" for c in value)[:limit]
    return kept or NILVALUE


def format_message(
    record: ShippedRecord, *, hostname: str, app_name: str, facility: int, sd_id: str
) -> bytes:
    """One RFC 5424 SYSLOG-MSG for ``record``: its seq and hashes in structured data,
    the whole record as JSON in MSG."""
    pri = facility * 8 + SEVERITY.get(record.outcome, 5)
    ts = record.ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    params = {
        "seq": str(record.seq),
        "hash": record.record_hash,
        "prev": record.prev_hash,
        "actor": record.actor,
        "action": record.action,
        "resource": record.resource,
        "project": record.project,
        "outcome": record.outcome,
    }
    sd = "[" + sd_id + "".join(f' {k}="{_param(v)}"' for k, v in params.items()) + "]"
    header = (
        f"<{pri}>1 {ts} {_printable(hostname, 255)} {_printable(app_name, 48)} "
        f"{NILVALUE} {_printable(record.action, 32)} "
    )
    return (header + sd + " ").encode() + BOM + record.line


def frame(message: bytes) -> bytes:
    """RFC 5425 octet-counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode() + b" " + message


class SyslogTlsSink:
    """A syslog receiver over TLS (rsyslog imtcp/gtls, syslog-ng network(transport(tls))).

    Each delivery opens a connection, writes its frames, sends TLS close_notify and waits
    for the receiver's: a receiver answers it only after reading everything before it,
    so that answer is the acknowledgement syslog itself lacks. A reset, a bare TCP close
    or a timeout means not acknowledged, and the records are sent again.
    """

    kind = "syslog"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext,
        hostname: str,
        app_name: str = "ghaf",
        facility: int = 13,
        sd_id: str = "ghafAudit@32473",
        timeout_s: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.context = context
        self.hostname, self.app_name, self.facility, self.sd_id = (
            hostname,
            app_name,
            facility,
            sd_id,
        )
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, name: str, sink: AuditSinkSettings) -> SyslogTlsSink:
        """The sink ``audit_shipping.sinks.NAME`` describes."""
        parsed = urlparse(sink.url)
        if parsed.hostname is None or parsed.port is None:
            raise ConfigError(
                f"setting audit_shipping.sinks.{name}.url = {sink.url!r} names no host and port",
                hint="use syslog+tls://HOST:PORT",
            )
        return cls(
            parsed.hostname,
            parsed.port,
            context=sink_context(name, sink.ca_file, sink.cert_file, sink.key_file),
            hostname=sink.hostname or socket.gethostname(),
            app_name=sink.app_name,
            facility=sink.facility,
            sd_id=sink.sd_id,
            timeout_s=sink.timeout_s,
        )

    def send_many(self, records: Sequence[ShippedRecord]) -> None:
        """Write the records' frames on a fresh connection and wait for close_notify.

        Raises:
            OSError: connection refused or reset, TLS failure, timeout, or no close_notify.
        """
        payload = b"".join(
            frame(
                format_message(
                    r,
                    hostname=self.hostname,
                    app_name=self.app_name,
                    facility=self.facility,
                    sd_id=self.sd_id,
                )
            )
            for r in records
        )
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        with raw, self.context.wrap_socket(raw, server_hostname=self.host) as tls:
            tls.sendall(payload)
            try:
                tls.unwrap()  # our close_notify, then the receiver's
            except ssl.SSLEOFError as exc:
                raise ConnectionError(
                    "the receiver closed without TLS close_notify: delivery not acknowledged"
                ) from exc

    def close(self) -> None:
        """Nothing is kept open between deliveries."""
