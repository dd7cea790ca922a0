"""Where a command runs: ``--on local|ray|ray://HOST:PORT``, read one way by every door.

``ghaf serve``, ``ghaf predict``, ``ghaf features retrieve`` and ``ghaf train`` all take
``--on``; ``ray://HOST:PORT`` is the Ray head's GCS address (what ``ray start --head
--port`` listens on), never a Ray Client address. Kept apart from :mod:`ghaf.pipelines.ray`
so that reading the option imports nothing of Ray's.
"""

from __future__ import annotations

from ghaf.errors import InvalidInputError

SCHEME = "ray://"


def _hint(option: str) -> str:
    return f"e.g. {option} ray://127.0.0.1:6379 (what `ray start --head --port` listens on)"


def ray_target(
    value: str | None, ray_address: str | None = None, *, option: str = "--on"
) -> tuple[bool, str | None]:
    """(on Ray?, the head's ``HOST:PORT``; ``None`` for a new local node) for ``value``.

    ``value`` is ``local`` (or ``None``), ``ray`` (the cluster at ``ray_address``, the
    ``ray_address`` setting, else a new local node) or ``ray://HOST:PORT``.

    Raises:
        InvalidInputError: naming ``option`` when ``value`` is none of those.
    """
    if value is None or value == "local":
        return False, None
    if value == "ray":
        return True, ray_address
    host, _, port = value.removeprefix(SCHEME).rpartition(":")
    valid = value.startswith(SCHEME) and host and "/" not in host and port.isdigit()
    if valid and 0 < int(port) < 65536:
        return True, f"{host}:{int(port)}"
    raise InvalidInputError(
        f"{option} {value!r} is not local, ray or ray://HOST:PORT", hint=_hint(option)
    )


def head_address(value: str, *, option: str = "--on") -> str:
    """``HOST:PORT`` of ``ray://HOST:PORT``, for a door that runs on a named cluster only.

    Raises:
        InvalidInputError: anything else, naming the option.
    """
    try:
        on_ray, address = ray_target(value, option=option)
    except InvalidInputError:
        on_ray, address = False, None
    if not on_ray or address is None or not value.startswith(SCHEME):
        raise InvalidInputError(
            f"{option} must be ray://HOST:PORT (the Ray head's address), not {value!r}",
            hint=_hint(option),
        )
    return address
