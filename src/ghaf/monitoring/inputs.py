"""Where a window comes from: an Arrow table, a Parquet path, a dataset ref or a stored profile."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.monitoring.profile import Profile, build_profile

if TYPE_CHECKING:
    from ghaf.platform import Platform

Window: TypeAlias = pa.Table | Profile | Path | str
PROFILE_PREFIX = "profile:"
BATCH_ROWS = 256 * 1024
ROW_GROUP_BYTES = 256 * 1024 * 1024
"""Row groups up to this size (uncompressed) are read whole, one column at a time."""


def describe(window: Window) -> str:
    """A short name for a window, for reports."""
    if isinstance(window, pa.Table):
        return f"table ({window.num_rows:,} rows)"
    if isinstance(window, Profile):
        return f"profile ({window.num_rows:,} rows)"
    return Path(window).name if isinstance(window, Path) else str(window)


def profile_window(
    window: Window,
    platform: Platform | None = None,
    *,
    columns: Sequence[str] | None = None,
    capacity: int | None = None,
    seed: int | None = 0,
) -> Profile:
    """Profile ``window``: a table, a Parquet file (streamed), ``NAME:V`` or ``profile:NAME``.

    Raises:
        InvalidInputError: the window is empty or unreadable.
        NotFoundError: the file, dataset or profile does not exist.
    """
    if isinstance(window, Profile):
        return window
    if isinstance(window, pa.Table):
        return _checked(
            build_profile(window, columns=columns, capacity=capacity, seed=seed), "table"
        )
    text = str(window)
    if text.startswith(PROFILE_PREFIX):
        if platform is None:
            raise InvalidInputError(f"{text!r} needs a platform", hint="open the platform first")
        from ghaf.monitoring.store import load_profile

        return load_profile(platform, text[len(PROFILE_PREFIX) :])
    path = Path(text)
    if path.exists():
        return _checked(_profile_parquet(path, columns, capacity, seed), text)
    if ":" in text or platform is not None:
        if platform is None:
            raise InvalidInputError(
                f"{text!r} is not a file, and dataset refs need a platform",
                hint="pass a Parquet path or open the platform",
            )
        from ghaf.data import dataset_parquet_path

        return _checked(
            _profile_parquet(dataset_parquet_path(platform, text), columns, capacity, seed), text
        )
    raise NotFoundError(f"no file {text!r}", hint="pass a Parquet path or a dataset ref NAME:V")


def _profile_parquet(
    path: Path, columns: Sequence[str] | None, capacity: int | None, seed: int | None
) -> Profile:
    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInputError(
            f"{path} is not a readable Parquet file", hint="pass a Parquet file"
        ) from exc
    schema = source.schema_arrow
    names = list(columns) if columns is not None else None
    return build_profile(
        _row_groups(source, names), columns=names, capacity=capacity, seed=seed, schema=schema
    )


def _row_groups(source: pq.ParquetFile, names: list[str] | None) -> Iterator[pa.Table]:
    """The file's rows, one row group at a time, each decoded one column at a time.

    Decoding a whole row group at once holds its compressed pages, the decoded pages and
    the output together (~5x the data for a 100k x 25 window); column by column only
    one column's scratch is live at once. A row group too large to hold is streamed
    in batches instead. One decoding thread: less total CPU than a pool for windows.
    """
    wanted = names if names is not None else source.schema_arrow.names
    for index in range(source.metadata.num_row_groups):
        group = source.metadata.row_group(index)
        if group.total_byte_size > ROW_GROUP_BYTES:
            yield from (
                pa.Table.from_batches([batch])
                for batch in source.iter_batches(
                    batch_size=BATCH_ROWS, row_groups=[index], columns=names, use_threads=False
                )
            )
            continue
        arrays = [
            source.read_row_group(index, columns=[name], use_threads=False).column(0)
            for name in wanted
        ]
        yield pa.Table.from_arrays(arrays, names=wanted)


def _checked(profile: Profile, where: str) -> Profile:
    if profile.num_rows == 0:
        raise InvalidInputError(
            f"the window {where!r} has no rows", hint="compare a window that has data"
        )
    return profile
