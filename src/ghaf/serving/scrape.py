"""Reading a ``ghaf serve``'s ``/metrics`` from another process: the canary evaluator and
the scheduled SLOs both count requests from it, as Prometheus would.

Bounded: a target that does not answer is asked again a few times (Prometheus tolerates a
failed scrape; a busy server must not pause a canary or blank an SLO), an answer larger
than :data:`MAX_SCRAPE_BYTES` is refused, redirects are not followed, no proxy from the
environment is used, and an error never echoes the body.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

from ghaf.errors import PolicyViolationError

MAX_SCRAPE_BYTES = 8 << 20
SCRAPE_TIMEOUT_S = 3.0
SCRAPE_ATTEMPTS = 3
SCRAPE_BACKOFF_S = 0.25


class ScrapeError(Exception):
    """A metrics target gave no usable answer (the message says why, never its body)."""


def _fetch(url: str, timeout: float) -> str:
    with (
        httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
        client.stream("GET", url) as reply,
    ):
        if reply.status_code != 200:
            fix = " (serve with --metrics-public)" if reply.status_code in (401, 403) else ""
            raise ScrapeError(f"{url} answered HTTP {reply.status_code}{fix}")
        body = bytearray()
        for chunk in reply.iter_bytes():
            body += chunk
            if len(body) > MAX_SCRAPE_BYTES:
                raise ScrapeError(f"{url} sent more than {MAX_SCRAPE_BYTES >> 20} MiB")
    return body.decode("utf-8", errors="replace")


def fetch_metrics(
    target: str, timeout: float = SCRAPE_TIMEOUT_S, attempts: int = SCRAPE_ATTEMPTS
) -> str:
    """The text exposition at ``TARGET/metrics`` (no credential), asked up to
    ``attempts`` times while it does not answer; an answer that is wrong (not 200, too
    large) is final.

    Raises:
        ScrapeError: no answer after ``attempts`` tries, not 200, or too large.
    """
    url = f"{target.rstrip('/')}/metrics"
    for attempt in range(1, attempts + 1):
        try:
            return _fetch(url, timeout)
        except httpx.HTTPError as exc:
            if attempt == attempts:
                raise ScrapeError(
                    f"{url} did not answer ({type(exc).__name__}, {attempts} tries)"
                ) from None
            time.sleep(SCRAPE_BACKOFF_S * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def check_allowed(target: str, allow: Sequence[str]) -> None:
    """Refuse ``target`` unless ``allow`` (``server.fetch_allow``) is empty or names its
    scheme, host and port (an entry without a port allows every port of its host).

    Raises:
        PolicyViolationError: naming the target and the setting.
    """
    if not allow:
        return
    want = urlsplit(target)
    for entry in allow:
        base = urlsplit(entry.strip())
        if (base.scheme, base.hostname) == (want.scheme, want.hostname) and (
            base.port is None or base.port == want.port
        ):
            return
    raise PolicyViolationError(
        f"metrics target {target[:200]} is not in server.fetch_allow",
        hint="read metrics only from the ghaf serve base URLs the operator lists in "
        "server.fetch_allow (ghaf.toml)",
    )
