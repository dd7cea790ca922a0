"""Where ``ghaf login --server`` keeps a server's token on a client machine: the OS
keyring where the machine has one (macOS Keychain, Windows Credential Locker, the Secret
Service on a Linux desktop), else ``servers.json`` under the user's config directory
(0600 in a 0700 directory). A client machine has no Ghaf home, so neither is in one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SERVICE = "ghaf"
"""The keyring service name tokens are kept under (one entry per server URL)."""


def servers_path() -> Path:
    """The file tokens are kept in where no keyring is usable."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ghaf" / "servers.json"


def os_keyring() -> Any | None:
    """The ``keyring`` module when this machine has a real keyring behind it, else None
    (keyring not installed, or only its fail/null backends: a headless server)."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or backend.priority <= 0:
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return keyring


def _file_tokens() -> dict[str, str]:
    path = servers_path()
    if not path.is_file():
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text()).items()}


def saved_token(url: str) -> str | None:
    """The token kept for the server at ``url``: the keyring's, else the file's."""
    url = url.rstrip("/")
    keyring = os_keyring()
    if keyring is not None:
        token = keyring.get_password(SERVICE, url)
        if token:
            return str(token)
    return _file_tokens().get(url)


def save_token(url: str, token: str) -> str:
    """Keep ``token`` for ``url``; says where (for the login message)."""
    url = url.rstrip("/")
    keyring = os_keyring()
    if keyring is not None:
        keyring.set_password(SERVICE, url, token)
        tokens = _file_tokens()
        if url in tokens:  # an older token of the file would be found after a keyring miss
            del tokens[url]
            _write(tokens)
        return f"the OS keyring ({type(keyring.get_keyring()).__name__})"
    _write({**_file_tokens(), url: token})
    return f"{servers_path()} (0600)"


def _write(tokens: dict[str, str]) -> None:
    path = servers_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(tokens, indent=2, sort_keys=True))
