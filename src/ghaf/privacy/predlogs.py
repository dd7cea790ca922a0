"""The prediction log as retention and erasure see it: its files, their age, dropping rows.

Files are found with :func:`ghaf.serving.predlog.log_files`; each is one complete
Parquet file of :data:`~ghaf.serving.predlog.LOG_SCHEMA` (``ts`` in epoch milliseconds),
encrypted with the home's KEK (read and written through
:func:`~ghaf.serving.predlog.read_log_table` and
:func:`~ghaf.serving.predlog.write_log_file`). A file that loses rows is rewritten
(encrypted in memory) beside itself and renamed over the original, so a reader sees the
old file or the new one; a file left empty is removed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ghaf.errors import IntegrityError
from ghaf.platform import Platform
from ghaf.security.base import KeyProvider
from ghaf.serving.predlog import log_files, read_log_table, write_log_file


def log_dirs(platform: Platform) -> list[Path]:
    """The prediction log directories retention and erasure cover (those that exist)."""
    home = Path(platform.settings.home)
    dirs = [home / "predictions", *platform.settings.retention.prediction_log_dirs]
    seen: list[Path] = []
    for directory in dirs:
        resolved = directory.expanduser().resolve()
        if resolved.is_dir() and resolved not in seen:
            seen.append(resolved)
    return seen


def log_files_of(platform: Platform) -> Iterator[Path]:
    """Every complete prediction log file, oldest first per directory."""
    for directory in log_dirs(platform):
        yield from log_files(directory)


def label(platform: Platform, path: Path) -> str:
    """A file's name as certificates and run records show it (relative to the home)."""
    home = Path(platform.settings.home).resolve()
    return str(path.relative_to(home)) if path.is_relative_to(home) else str(path)


def newest_ms(path: Path, *, keys: KeyProvider | None = None) -> float | None:
    """The time of a file's newest prediction (epoch ms); None for an empty or foreign file.

    A file that no longer decrypts (its KEK version destroyed: crypto-shredded) is dated
    by its modification time, which is never earlier than its newest record, so
    retention still removes it in time."""
    try:
        table = read_log_table(path, ["ts"], keys=keys)
    except (pa.ArrowInvalid, OSError, KeyError):
        return None
    except IntegrityError:
        try:
            return path.stat().st_mtime * 1000.0
        except FileNotFoundError:
            return None
    if "ts" not in table.column_names:
        return None
    top = pc.max(table.column("ts")).as_py() if table.num_rows else None
    return float(top) if top is not None else None


@dataclass(frozen=True)
class Dropped:
    """Rows removed from one log file; ``removed`` when the file itself went."""

    path: Path
    rows: int
    removed: bool


def drop_requests(
    path: Path,
    request_ids: Collection[str],
    *,
    apply: bool = True,
    keys: KeyProvider | None = None,
) -> Dropped:
    """Remove the rows whose ``request_id`` is one of ``request_ids`` from ``path``
    (decrypted, and written back encrypted, with ``keys``).

    With ``apply=False`` nothing changes: the count is what would be removed.
    """
    try:
        table = read_log_table(path, keys=keys)
    except (pa.ArrowInvalid, OSError):
        return Dropped(path, 0, False)
    if "request_id" not in table.column_names or not request_ids:
        return Dropped(path, 0, False)
    hit = pc.fill_null(
        pc.is_in(table.column("request_id"), value_set=pa.array(sorted(request_ids), pa.string())),
        False,
    )
    count = int(pc.sum(hit).as_py() or 0)
    if count == 0 or not apply:
        return Dropped(path, count, count == table.num_rows)
    kept = table.filter(pc.invert(hit))
    if kept.num_rows == 0:
        path.unlink(missing_ok=True)
        return Dropped(path, count, True)
    write_log_file(path, kept, keys)  # the schema (and its feature names) travel along
    return Dropped(path, count, False)
