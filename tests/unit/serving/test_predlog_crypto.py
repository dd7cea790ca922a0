"""The prediction log is encrypted at rest with the home's KEK: no feature value, feature
name or request id in the bytes on disk; it reads back equal through every reader; a
tampered or foreign file is refused by name; ``ghaf keys rotate`` re-wraps log files, and
destroying the old KEK version leaves the files not re-wrapped unreadable."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ghaf.errors import ConfigError, IntegrityError
from ghaf.experiments.canary_evidence import read_answers
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.privacy.predlogs import drop_requests, newest_ms
from ghaf.security.base import KeyProvider
from ghaf.security.file_envelope import MAGIC, header_of
from ghaf.security.keys import LocalKeyProvider
from ghaf.serving.predlog import (
    ParquetSink,
    PredictionBatch,
    PredictionLogger,
    prediction_log_keys,
    read_log_table,
    read_prediction_log,
    read_prediction_windows,
)
from ghaf.settings import load_settings

SECRET = 314159.26535897  # a distinctive feature value
PII_COLUMN = "national_id_number"
REQUEST = "req-5c1f-distinctive"


def _record(i: int, ts: float = 1000.0) -> dict[str, Any]:
    features = np.array([[SECRET + i, 2.5], [7.0, 8.0]])
    return {"request_id": f"{REQUEST}-{i}", "ts": ts + i, "model": "fraud", "version": "2",
            "latency_ms": 1.5, "features": features, "columns": [PII_COLUMN, "amount"],
            "outputs": {"probabilities": np.array([[0.1, 0.9], [0.8, 0.2]])}}  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("predcrypt")
    with init_home(load_settings(home=root / "home")) as platform:
        yield platform


@pytest.fixture
def keys(home: Platform) -> KeyProvider:
    found = prediction_log_keys(home)
    assert found is not None  # encryption at rest is on by default
    return found


def _write(directory: Path, keys: KeyProvider | None, records: list[dict[str, Any]]) -> Path:
    sink = ParquetSink(directory, keys=keys)
    sink.write(PredictionBatch.from_records(records))
    return directory / f"predictions-{sink._seq:08d}.parquet"


def test_a_logged_file_holds_no_plaintext_and_reads_back_equal(
    keys: KeyProvider, tmp_path: Path
) -> None:
    logger = PredictionLogger([ParquetSink(tmp_path, keys=keys)], flush_every=60)
    records = [_record(i) for i in range(3)]
    for record in records:
        logger.log(record)
    logger.close()
    [path] = sorted(tmp_path.iterdir())  # one complete file, no staging file left beside it
    raw = path.read_bytes()
    assert raw.startswith(MAGIC)
    for plain in (PII_COLUMN.encode(), REQUEST.encode(), struct.pack("<d", SECRET), b"PAR1"):
        assert plain not in raw
    logged = read_prediction_log(tmp_path, keys=keys).to_pylist()
    assert [r["request_id"] for r in logged] == [r["request_id"] for r in records]
    assert [r["features"] for r in logged] == [r["features"].tolist() for r in records]
    window = read_prediction_windows(tmp_path, "fraud", keys=keys)["2"]
    assert window.features.column_names == [PII_COLUMN, "amount"]
    assert window.features.column(PII_COLUMN).to_pylist()[::2] == [SECRET + i for i in range(3)]
    with pytest.raises(ConfigError, match=f"{path}.*is encrypted"):
        read_prediction_log(tmp_path)  # without the home's keys: a clear error, not garbage


def test_old_plaintext_files_read_beside_encrypted_ones_and_canary_evidence_reads_both(
    keys: KeyProvider, tmp_path: Path
) -> None:
    plain = _write(tmp_path, None, [_record(0)])  # written before encryption (or a fixture)
    sealed = _write(tmp_path, keys, [_record(1)])
    assert plain.read_bytes().startswith(b"PAR1") and sealed.read_bytes().startswith(MAGIC)
    assert read_prediction_log(tmp_path, keys=keys).column("request_id").to_pylist() == [
        f"{REQUEST}-0",
        f"{REQUEST}-1",
    ]
    answers = read_answers(tmp_path, "fraud", ["2"], 0.0, 0.5, keys=keys)
    assert answers.column("request_id").to_pylist() == [f"{REQUEST}-0", f"{REQUEST}-1"]
    assert answers.column("top").to_pylist() == [1, 1]


def test_erasure_rewrites_a_file_encrypted_and_retention_dates_it(
    keys: KeyProvider, tmp_path: Path
) -> None:
    path = _write(tmp_path, keys, [_record(0), _record(1)])
    assert newest_ms(path, keys=keys) == 1001.0
    dropped = drop_requests(path, {f"{REQUEST}-0"}, keys=keys)
    assert (dropped.rows, dropped.removed) == (1, False)
    raw = path.read_bytes()
    assert raw.startswith(MAGIC) and f"{REQUEST}-1".encode() not in raw
    assert read_log_table(path, ["request_id"], keys=keys).column(0).to_pylist() == [f"{REQUEST}-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_tampered_truncated_or_foreign_file_is_refused_by_name(
    keys: KeyProvider, tmp_path: Path
) -> None:
    path = _write(tmp_path, keys, [_record(0)])
    good = path.read_bytes()
    body = len(good) - 40
    cases = {
        "flipped body byte": good[:body] + bytes([good[body] ^ 1]) + good[body + 1 :],
        "truncated": good[:-20],
        "another kek version": good.replace(b'"kek_version":1', b'"kek_version":7', 1),
        "altered bound context": good.replace(b'"size":', b'"size":1', 1),
    }
    for data in cases.values():
        path.write_bytes(data)
        with pytest.raises(IntegrityError, match=str(path)):
            read_log_table(path, keys=keys)
    foreign = LocalKeyProvider(tmp_path / "other" / "kek.json")
    foreign.create()
    path.write_bytes(good)
    with pytest.raises(IntegrityError, match=f"{path} cannot be decrypted"):
        read_log_table(path, keys=foreign)  # another home's KEK


def test_rotation_rewraps_log_files_and_shredding_the_old_version_leaves_the_rest_unreadable(
    platform: Platform, tmp_path: Path
) -> None:
    from ghaf.access.rotation import destroy_key_version, rotate_keys

    keys = prediction_log_keys(platform)
    assert keys is not None
    covered = _write(Path(platform.settings.home) / "predictions", keys, [_record(0)])
    elsewhere = _write(tmp_path / "unlisted", keys, [_record(1)])  # not a log dir of the home
    past = 1_700_000_000
    os.utime(covered, (past, past))
    body = covered.read_bytes()[len(header_of(covered).to_bytes()) :]
    assert header_of(covered).wrapped.version == 1

    rotation = rotate_keys(platform, platform.admin())
    assert (rotation.version, rotation.log_files, rotation.log_rewrapped) == (2, 1, 1)
    assert header_of(covered).wrapped.version == 2
    assert covered.stat().st_mtime == past  # the window readers' file order is kept
    assert covered.read_bytes().endswith(body)  # the ciphertext is not rewritten
    assert rotate_keys(platform, platform.admin()).log_rewrapped == 1  # to version 3
    newer = _write(Path(platform.settings.home) / "predictions", keys, [_record(2)])
    assert header_of(newer).wrapped.version == 3

    destroy_key_version(platform, platform.admin(), 1)
    assert read_log_table(covered, ["request_id"], keys=keys).num_rows == 1
    with pytest.raises(IntegrityError, match=f"{elsewhere} cannot be decrypted.*destroyed"):
        read_log_table(elsewhere, keys=keys)  # crypto-shredded: never re-wrapped
    assert newest_ms(elsewhere, keys=keys) == elsewhere.stat().st_mtime * 1000.0  # retention


def test_the_one_shot_chunked_encryption_log_files_use_passes_the_wycheproof_vectors() -> None:
    """Log files are sealed in memory (``encrypt_bytes``/``decrypt_bytes``, buffers sized to
    the file): the same C2SP construction as the streamed artifacts, held to its vectors."""
    import hashlib
    import json
    import zlib

    from ghaf.errors import InvalidInputError
    from ghaf.security.chunked import decrypt_bytes, encrypt_bytes

    data = Path(__file__).parents[2] / "data" / "wycheproof"
    checked = 0
    for key_size in (16, 32):
        name = f"c2sp_chunked_encryption_aes_{key_size * 8}_gcm_test.json"
        for group in json.loads((data / name).read_text())["testGroups"]:
            for test in group["tests"]:
                key, ctx = bytes.fromhex(test["key"]), bytes.fromhex(test["ctx"])
                ct = zlib.decompress(bytes.fromhex(test["ct"]))
                checked += 1
                if test["result"] != "valid":
                    with pytest.raises((IntegrityError, InvalidInputError)):
                        decrypt_bytes(key, ctx, ct, key_size=key_size)
                    continue
                out = decrypt_bytes(key, ctx, ct, key_size=key_size)
                assert hashlib.sha512(out).hexdigest() == test["msgSha512"], test["tcId"]
                again = encrypt_bytes(key, ctx, out, salt=ct[:24], key_size=key_size)
                assert bytes(again) == ct, test["tcId"]
    assert checked > 60
