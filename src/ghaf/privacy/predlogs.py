"""The prediction log as retention and erasure see it: its files, their age, dropping rows.

Files are found with :func:`ghaf.serving.predlog.log_files`; each is one complete
Parquet file of :data:`~ghaf.serving.predlog.LOG_SCHEMA` (``ts`` in epoch milliseconds).
A file that loses rows is rewritten beside itself and renamed over the original, so a
reader sees the old file or the new one; a file left empty is removed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ghaf.platform import Platform
from ghaf.serving.predlog import log_files


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


def newest_ms(path: Path) -> float | None:
    """The time of a file's newest prediction (epoch ms); None for an empty or foreign file."""
    try:
        table = pq.read_table(path, columns=["ts"])
    except (pa.ArrowInvalid, OSError, KeyError):
        return None
    top = pc.max(table.column("ts")).as_py() if table.num_rows else None
    return float(top) if top is not None else None


@dataclass(frozen=True)
class Dropped:
    """Rows removed from one log file; ``removed`` when the file itself went."""

    path: Path
    rows: int
    removed: bool


def drop_requests(path: Path, request_ids: Collection[str], *, apply: bool = True) -> Dropped:
    """Remove the rows whose ``request_id`` is one of ``request_ids`` from ``path``.

    With ``apply=False`` nothing changes: the count is what would be removed.
    """
    try:
        table = pq.read_table(path)
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
    partial = path.with_name(f".{path.name}.erasure")
    try:
        pq.write_table(kept, partial)  # the schema (and its feature names) travel along
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Dropped(path, count, False)
