"""Where an online store's data lives: declared by settings, remembered by the store.

Neither SQLite nor Redis can say where it runs, so the region declared when data is
first written is recorded in the store itself; a later open that declares another
region is refused instead of trusting the new label.
"""

from __future__ import annotations

from ghaf.errors import ConfigError


def check_store_region(url: str, recorded: str | None, declared: str | None) -> None:
    """Refuse a store whose recorded region differs from the declared one.

    Raises:
        ConfigError: naming both regions.
    """
    if recorded is None or declared is None or recorded == declared:
        return
    raise ConfigError(
        f"online store {url} holds data recorded as in region {recorded}, but "
        f"online_store_region says {declared}",
        hint=f"set online_store_region = {recorded!r} if the store is really there, or use "
        f"a new store in {declared}",
    )
