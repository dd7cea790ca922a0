"""CSV text is decoded in one explicit encoding: bad bytes and open quotes are refused by place."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghaf.data.contracts import contract_from_dict
from ghaf.data.sources import CsvSource, open_source
from ghaf.errors import InvalidInputError

TYPES = {"a": pa.int64(), "b": pa.string()}
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def read(path: Path, **options: object) -> pa.Table:
    return pa.Table.from_batches(list(CsvSource(path, **options).batches()))  # type: ignore[arg-type]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_latin1_bytes_are_refused_as_utf8_and_read_with_their_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "l1.csv", b"a,b\n1,x\n2,caf\xe9\n")
    with pytest.raises(InvalidInputError) as caught:
        read(path)
    assert caught.value.headline.endswith(
        "l1.csv: line 3: byte 0xe9 at offset 13 is not valid utf-8 (invalid continuation byte)"
    )
    assert caught.value.hint and "--encoding latin-1" in caught.value.hint
    got = read(path, encoding="latin-1")
    assert got.schema.field("b").type == pa.string()
    assert got.column("b").to_pylist() == ["x", "café"]


def test_a_bad_byte_far_into_the_file_is_named_by_line_and_offset(tmp_path: Path) -> None:
    body = b"a,b\n" + b"1,x\n" * 5000 + b"2,\xff\n" + b"3,y\n" * 10
    path = write(tmp_path, "late.csv", body)
    for types in ({}, TYPES):  # inferred or pinned string column
        with pytest.raises(InvalidInputError, match=r"line 5002: byte 0xff at offset 20006"):
            read(path, column_types=types, block_size=1 << 12)


def test_utf16_needs_its_encoding_and_then_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path, "u16.csv", "a,b\n1,ü\n2,ß\n".encode("utf-16"))
    with pytest.raises(InvalidInputError, match=r"is UTF-16 text .*byte-order mark") as caught:
        read(path)
    assert caught.value.hint == "pass --encoding utf-16"
    got = read(path, encoding="utf-16", column_types=TYPES)
    assert got.to_pylist() == [{"a": 1, "b": "ü"}, {"a": 2, "b": "ß"}]

    no_bom = write(tmp_path, "le.csv", "a,b\n1,ü\n".encode("utf-16-le"))
    with pytest.raises(InvalidInputError, match="does not start with BOM") as caught:
        read(no_bom, encoding="utf-16")
    assert caught.value.hint == "name the byte order: --encoding utf-16-le"
    assert read(no_bom, encoding="utf-16-le").column("b").to_pylist() == ["ü"]


def test_a_utf8_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbfa,b\n1,x\n")
    assert read(path).schema.names == ["a", "b"]


def test_a_file_cut_inside_a_character_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "cut.csv", "a,b\n1,€".encode()[:-1])
    with pytest.raises(InvalidInputError, match=r"line 2: byte 0xe2 0x82 at offset 6"):
        read(path)


def test_an_unknown_encoding_is_refused_before_reading(tmp_path: Path) -> None:
    for name in ("klingon", "base64"):
        with pytest.raises(InvalidInputError, match=f"--encoding '{name}' is not a known"):
            open_source(write(tmp_path, "t.csv", b"a\n1\n"), encoding=name)


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b'a,b\n1,x\n2,"open\n3,y\n4,z\n', 3),  # last column: it would swallow the rest
        (b'a,b,c\n1,x,p\n2,"open,q\n3,y,r\n', 3),  # middle column: a column-count error
        (b'a,b\n1,"x"\n2,"ok ""quoted"""\n3,"open', 4),  # no newline at the end
        (b'a,b\n1,"two\nlines"\n2,"open\n3,y\n', 4),  # after a legal multi-line value
    ],
)
def test_an_unclosed_quote_names_the_line_it_opens_on(
    tmp_path: Path, body: bytes, line: int
) -> None:
    path = write(tmp_path, "q.csv", body)
    with pytest.raises(InvalidInputError) as caught:
        read(path)
    assert caught.value.headline.endswith(
        f"q.csv: line {line}: a quoted value opens there and never closes"
    )


def test_an_unclosed_quote_across_blocks_is_still_named(tmp_path: Path) -> None:
    body = b"a,b\n" + b"1,x\n" * 100 + b'2,"open\n' + b"3,y\n" * 2000
    with pytest.raises(InvalidInputError, match=r"line 102: a quoted value opens there"):
        read(write(tmp_path, "big.csv", body), block_size=1 << 10)


def test_a_literal_quote_inside_an_unquoted_value_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "inch.csv", b'a,b\n1,5" screen\n2,x\n')
    assert read(path).column("b").to_pylist() == ['5" screen', "x"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"columns": "foo"}, "contract: columns must be a mapping, not a str"),
        ({"columns": [{"name": "a"}]}, "contract: columns must be a mapping, not a list"),
        ({"columns": {"a": "int64"}}, "contract: column 'a' must be a mapping, not a str"),
        ({"columns": {"a": {"allowed": 3}}}, "column 'a': allowed must be a list, not a int"),
        ({"columns": {1: {"type": "int64"}}}, "contract: column name 1 is not text"),
        ({"checks": {"kind": "row_count"}}, "contract: checks must be a list, not a dict"),
    ],
)
def test_contract_shapes_are_refused_naming_the_field(
    body: dict[object, object], words: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        contract_from_dict(body)  # type: ignore[arg-type]
    assert caught.value.headline == words or caught.value.headline.endswith(words)
    assert caught.value.hint


# -- properties ------------------------------------------------------------------------------

TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\x00"), max_size=12
)  # pyarrow reads a lone CR as a line end, as most CSV readers do
ROWS = st.lists(st.tuples(st.integers(-(2**62), 2**62), TEXT), min_size=1, max_size=25)


def csv_bytes(rows: list[tuple[int, str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["a", "b"])
    writer.writerows(rows)
    return out.getvalue().encode()


@SETTINGS
@given(rows=ROWS)
def test_valid_utf8_csv_round_trips(tmp_path: Path, rows: list[tuple[int, str]]) -> None:
    got = read(write(tmp_path, "p.csv", csv_bytes(rows)), column_types=TYPES)
    assert got.column("a").to_pylist() == [r[0] for r in rows]
    assert got.column("b").to_pylist() == [r[1] for r in rows]


NEVER_UTF8 = st.sampled_from([0xC0, 0xC1, *range(0xF5, 0x100)])


@SETTINGS
@given(rows=ROWS, where=st.floats(0, 1), bad=NEVER_UTF8)
def test_an_invalid_byte_anywhere_is_refused_not_ingested(
    tmp_path: Path, rows: list[tuple[int, str]], where: float, bad: int
) -> None:
    data = csv_bytes(rows)
    at = min(int(where * len(data)), len(data))
    spoiled = data[:at] + bytes([bad]) + data[at:]
    with pytest.raises(InvalidInputError) as caught:
        read(write(tmp_path, "bad.csv", spoiled), column_types=TYPES)
    found = re.search(
        r"line (\d+): byte .* at offset (\d+) is not valid utf-8", caught.value.headline
    )
    assert found, caught.value.headline
    # The error starts at the byte, or at the start of the character it was pushed into.
    assert at - 3 <= int(found.group(2)) <= at
    assert int(found.group(1)) == data[: int(found.group(2))].count(b"\n") + 1


PLAIN = st.text(st.characters(codec="utf-8", exclude_characters='\r\n\x00",'), max_size=12)


@SETTINGS
@given(rows=ROWS, tail=st.lists(st.tuples(st.integers(0, 9), PLAIN), min_size=1, max_size=5))
def test_an_opened_quote_that_never_closes_is_refused(
    tmp_path: Path, rows: list[tuple[int, str]], tail: list[tuple[int, str]]
) -> None:
    head = csv_bytes(rows)
    rest = csv_bytes(tail).split(b"\n", 1)[1]  # no quotes in it: nothing needs quoting
    at = len(head) + rest.index(b",") + 1
    spoiled = head + rest[: at - len(head)] + b'"' + rest[at - len(head) :]
    with pytest.raises(InvalidInputError) as caught:
        read(write(tmp_path, "open.csv", spoiled), column_types=TYPES)
    line = head.count(b"\n") + 1
    assert caught.value.headline.endswith(
        f": line {line}: a quoted value opens there and never closes"
    )
