"""An HTTP JSON sink: each delivery is one POST of a batch of records, acknowledged by a 2xx."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from ghaf.errors import ConfigError
from ghaf.shipping.base import ShippedRecord, sink_context

if TYPE_CHECKING:
    from ghaf.settings import AuditSinkSettings

USER_AGENT = "ghaf-audit-shipper"


def _secret(name: str, field: str, path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"setting audit_shipping.sinks.{name}.{field} = {str(path)!r} cannot be read: {exc}",
            hint="point it at a readable file holding only the secret",
        ) from exc
    if not value:
        raise ConfigError(
            f"setting audit_shipping.sinks.{name}.{field} = {str(path)!r} is empty",
            hint="write the secret into the file",
        )
    return value


class HttpJsonSink:
    """POST ``{"source": "ghaf", "records": [...]}`` to an HTTPS endpoint (a SIEM's HTTP
    collector, a log pipeline's HTTP input).

    Each record is what ``ghaf audit export`` writes (seq, hashes included);
    ``Idempotency-Key`` names the batch's first and last record, so a receiver can drop a
    batch sent again after an acknowledgement was lost. Any status but 2xx is a failure
    and the batch is sent again later, whole.
    """

    kind = "http"

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client,
        authorization: str | None = None,
    ) -> None:
        self.url = url
        self.client = client
        self.authorization = authorization

    @classmethod
    def from_settings(cls, name: str, sink: AuditSinkSettings) -> HttpJsonSink:
        """The sink ``audit_shipping.sinks.NAME`` describes (secrets read from their files)."""
        authorization = None
        if sink.token is not None or sink.token_file is not None:
            token = (
                sink.token.get_secret_value()
                if sink.token is not None
                else _secret(name, "token_file", sink.token_file)  # type: ignore[arg-type]
            )
            authorization = f"Bearer {token}"
        elif sink.username is not None:
            password = (
                sink.password.get_secret_value()
                if sink.password is not None
                else _secret(name, "password_file", sink.password_file)  # type: ignore[arg-type]
            )
            pair = f"{sink.username}:{password}".encode()
            authorization = f"Basic {base64.b64encode(pair).decode()}"
        context = sink_context(name, sink.ca_file, sink.cert_file, sink.key_file)
        client = httpx.Client(verify=context, timeout=sink.timeout_s, follow_redirects=False)
        return cls(sink.url, client=client, authorization=authorization)

    def send_many(self, records: Sequence[ShippedRecord]) -> None:
        """POST the batch; return when the sink answered 2xx.

        Raises:
            OSError: any other status, or a transport failure.
        """
        body = b'{"source":"ghaf","records":[' + b",".join(r.line for r in records) + b"]}"
        first, last = records[0], records[-1]
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": f"ghaf-audit-{first.seq}-{last.seq}-{last.record_hash[:16]}",
        }
        if self.authorization is not None:
            headers["Authorization"] = self.authorization
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise ConnectionError(
                f"the sink answered HTTP {response.status_code}: {response.text[:200]!r}"
            )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
