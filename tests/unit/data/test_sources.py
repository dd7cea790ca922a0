"""Sources round-trip; bad input names file, line, column and leaves no partial version."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import jsonschema
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghaf.data import ingest, list_versions, read_dataset, run_transform
from ghaf.data.sources import CsvSource, JsonLinesSource, open_source
from ghaf.data.transforms import get_transform
from ghaf.errors import InvalidInputError, UserCodeError
from ghaf.lineage import downstream, upstream
from ghaf.lineage.openlineage import LineageSink, build_run_event, event_json
from ghaf.platform import Platform
from ghaf.settings import load_settings

# The OpenLineage 2-0-2 JSON schema, copied with its licence from the shared specs.
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "data" / "openlineage" / "OpenLineage.json").read_text()
)
TYPES = {"a": pa.int64(), "b": pa.string()}


def _nothing_stored(platform: Platform, name: str) -> None:
    assert list_versions(platform, name) == []
    assert list(platform.artifacts.digests()) == []


def test_csv_jsonl_parquet_round_trip(platform: Platform, tmp_path: Path) -> None:
    table = pa.table({"a": pa.array([1, 2, 3], pa.int64()), "b": ["x", "y", None]})
    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n3,\n")
    (tmp_path / "t.jsonl").write_text('{"a":1,"b":"x"}\n{"a":2,"b":"y"}\n{"a":3}\n')
    pq.write_table(table, tmp_path / "t.parquet")
    contract = {"columns": {"a": {"type": "int64"}, "b": {"type": "string"}}}
    for ext in ("csv", "jsonl", "parquet"):
        dv = ingest(platform, platform.admin(), tmp_path / f"t.{ext}", ext, contract=contract)
        got = read_dataset(platform, dv.ref)
        assert got.column("a").to_pylist() == [1, 2, 3]
        assert got.column("b").to_pylist()[:2] == ["x", "y"]


def test_large_csv_streams_in_many_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "".join(f"{i},v{i}\n" for i in range(50_000)))
    batches = list(CsvSource(path, TYPES, block_size=1 << 16).batches())
    assert len(batches) > 5 and sum(b.num_rows for b in batches) == 50_000


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("short.csv", "a,b\n1,x\n2\n", r"short.csv: line 3: Expected 2 columns, got 1"),
        ("type.csv", "a,b\n1,x\nzz,y\n", r"type.csv: line 3, column 'a': .*int64.*'zz'"),
        ("cols.csv", "a,c\n1,x\n", r"cols.csv: column 'b' is missing"),
        ("type.jsonl", '{"a":1,"b":"x"}\n{"a":"q","b":"y"}\n', r"type.jsonl: line 2"),
    ],
)
def test_bad_input_names_the_place(
    platform: Platform, tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    contract = {"columns": {"a": {"type": "int64"}, "b": {"type": "string"}}}
    with pytest.raises(InvalidInputError, match=message):
        ingest(platform, platform.admin(), tmp_path / name, "d", contract=contract)
    _nothing_stored(platform, "d")


def test_unreadable_and_unknown_files(platform: Platform, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"cannot read .*nope.csv"):
        ingest(platform, platform.admin(), tmp_path / "nope.csv", "d")
    locked = tmp_path / "locked.parquet"
    locked.write_bytes(b"not parquet")
    with pytest.raises(InvalidInputError, match=r"locked\.parquet: not a readable Parquet"):
        ingest(platform, platform.admin(), locked, "d")
    with pytest.raises(InvalidInputError, match="cannot tell the format"):
        open_source(str(tmp_path / "x.xlsx"))
    _nothing_stored(platform, "d")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(-(2**62), 2**62), st.text("abc xyz,\"'é", max_size=8)),
        min_size=1,
        max_size=30,
    )
)
def test_csv_round_trip_property(tmp_path: Path, rows: list[tuple[int, str]]) -> None:
    import csv

    path = tmp_path / "p.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b"])
        writer.writerows(rows)
    got = pa.Table.from_batches(list(CsvSource(path, TYPES).batches()))
    assert got.column("a").to_pylist() == [r[0] for r in rows]
    assert [v or "" for v in got.column("b").to_pylist()] == [r[1] for r in rows]


def test_jsonl_source_pins_types(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b": "z"}\n')
    batch = next(JsonLinesSource(path, TYPES).batches())
    assert batch.schema.field("a").type == pa.int64()


def test_sql_and_python_transforms_record_lineage(platform: Platform, tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2, 3, 4]}), tmp_path / "x.parquet")
    base = ingest(platform, platform.admin(), tmp_path / "x.parquet", "base")
    out = run_transform(
        platform,
        platform.admin(),
        "big",
        {"t": "base"},
        sql="SELECT x FROM t WHERE x > $m",
        params={"m": 2},
    )
    assert read_dataset(platform, out.ref).column("x").to_pylist() == [3, 4]
    transform = next(n for n in upstream(platform, out.node) if n.startswith("transform:"))
    recorded = get_transform(platform, transform.removeprefix("transform:"))
    assert recorded["params"] == {"m": 2} and recorded["inputs"] == {"t": "base:1"}
    assert len(recorded["code_digest"]) == 64

    def double(tables: dict[str, pa.Table], factor: int) -> pa.Table:
        return pa.table({"y": pa.compute.multiply(tables["t"].column("x"), factor)})

    doubled = run_transform(
        platform, platform.admin(), "doubled", {"t": "base:1"}, fn=double, params={"factor": 2}
    )
    assert read_dataset(platform, doubled.ref).column("y").to_pylist() == [2, 4, 6, 8]
    assert set(downstream(platform, base.node)) >= {out.node, doubled.node}

    def broken(tables: dict[str, pa.Table]) -> pa.Table:
        raise ZeroDivisionError("boom")

    with pytest.raises(UserCodeError, match="boom"):
        run_transform(platform, platform.admin(), "never", {"t": "base"}, fn=broken)
    with pytest.raises(InvalidInputError, match="transform SQL failed"):
        run_transform(platform, platform.admin(), "never", {"t": "base"}, sql="SELECT nope FROM t")
    assert list_versions(platform, "never") == []


def test_openlineage_events_validate_against_the_spec(platform: Platform, tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "x.parquet")
    ingest(platform, platform.admin(), tmp_path / "x.parquet", "base")
    run_transform(platform, platform.admin(), "out", {"t": "base"}, sql="SELECT x FROM t")
    lines = (platform.settings.home / "lineage" / "openlineage.jsonl").read_text().splitlines()
    assert len(lines) == 2
    validator = jsonschema.Draft202012Validator(
        {**SCHEMA, "$ref": "#/$defs/RunEvent"}, format_checker=jsonschema.FormatChecker()
    )
    for line in lines:
        validator.validate(json.loads(line))
    transform_event = json.loads(lines[1])
    assert transform_event["inputs"][0]["name"] == "base:1"
    assert transform_event["job"]["facets"]["sourceCode"]["sourceCode"] == "SELECT x FROM t"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**transform_event, "eventTime": 5})


def test_openlineage_http_sink_posts_to_a_local_receiver(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        sink = LineageSink(load_settings(home=tmp_path, lineage_url=url))
        event = build_run_event("dataset.ingest.x", namespace="ghaf://t", inputs=[], outputs=[])
        sink.send(event)
    finally:
        server.shutdown()
        server.server_close()
    assert received[0]["path"] == "/api/v1/lineage"
    assert received[0]["body"] == json.loads(event_json(event))
