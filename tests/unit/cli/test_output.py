"""Tables print times to the minute, whatever the JSON's precision and zone suffix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ghaf.cli.output import format_minute, to_jsonable


@pytest.mark.parametrize(
    "iso",
    ["2026-12-07T02:27:08.123456Z", "2026-12-07T02:27:59+00:00", "2026-12-07T02:27"],
)
def test_a_time_is_shown_to_the_minute(iso: str) -> None:
    assert format_minute(iso) == "2026-12-07 02:27"


def test_what_the_api_writes_is_shown_to_the_minute() -> None:
    written = to_jsonable({"at": datetime(2026, 12, 7, 2, 27, 8, 5, tzinfo=UTC)})["at"]
    assert written.endswith("Z") and format_minute(written) == "2026-12-07 02:27"
