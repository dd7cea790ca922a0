"""The one backend table: every kind is chosen there, by name, lazily, each name once."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from ghaf.backends import (
    BACKENDS,
    backend_class,
    backend_named,
    backend_names,
    flavor_module,
    open_blob_store,
    open_event_bus,
    open_executor,
    open_key_provider,
    open_prediction_sink,
    register_backend,
    runtime_class,
)
from ghaf.errors import ConfigError, InvalidInputError
from ghaf.settings import GhafSettings, load_settings


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, str]]:
    """The live table, restored after the test (registrations are process-wide)."""
    for concern, entries in list(BACKENDS.items()):
        monkeypatch.setitem(BACKENDS, concern, dict(entries))
    return BACKENDS


@pytest.mark.parametrize(
    ("concern", "name"), [(c, n) for c, entries in BACKENDS.items() for n in entries]
)
def test_every_registered_target_imports(concern: str, name: str) -> None:
    module_name, _, attr = BACKENDS[concern][name].partition(":")
    loaded = backend_named(concern, name, setting="test")
    if attr:
        assert loaded.__name__ == attr and loaded.__module__ == module_name
    else:
        assert loaded.__name__ == module_name


def test_every_flavor_with_a_runtime_is_a_flavor() -> None:
    # "sklearn" is the runtime's older name for skops files.
    assert set(backend_names("runtimes")) - {"sklearn"} <= set(backend_names("flavors"))


def test_unknown_scheme_lists_the_accepted_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        backend_class("artifacts", "ftp://bucket/models")
    assert "artifacts URL 'ftp://bucket/models' has an unsupported scheme" in caught.value.headline
    assert caught.value.hint == "use one of file://, s3://"


def test_unknown_setting_value_names_the_setting_and_the_accepted_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        backend_named("executors", "dask", setting="executor")
    assert "setting executor names an unknown executors backend 'dask'" in caught.value.headline
    assert caught.value.hint == "use one of local, ray"


def test_unknown_flavor_and_runtime_are_input_errors_listing_the_choices() -> None:
    with pytest.raises(InvalidInputError, match="unknown model flavor 'keras'") as flavor:
        flavor_module("keras")
    assert "skops" in (flavor.value.hint or "")
    with pytest.raises(InvalidInputError, match="no serving runtime for flavor 'pyfunc'"):
        runtime_class("pyfunc")


def test_registering_a_name_twice_is_refused(table: dict[str, dict[str, str]]) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_backend("artifacts", "s3", "thirdparty.store:OtherS3")
    register_backend("events", "kafka", "thirdparty.kafka:KafkaEventBus")
    with pytest.raises(ConfigError, match=r"named 'kafka' is already registered"):
        register_backend("events", "kafka", "thirdparty.kafka:Other")
    assert table["events"]["kafka"] == "thirdparty.kafka:KafkaEventBus"
    assert table["artifacts"]["s3"] == "ghaf.artifacts.s3:S3BlobStore"


def test_a_typo_in_the_concern_or_target_is_refused(table: dict[str, dict[str, str]]) -> None:
    with pytest.raises(ConfigError, match="unknown backend concern 'executor'"):
        register_backend("executor", "dask", "thirdparty.dask:DaskExecutor")
    with pytest.raises(ConfigError, match="is not an import path"):
        register_backend("executors", "dask", "thirdparty.dask:")
    assert "executor" not in table and "dask" not in table["executors"]


def test_a_registered_third_party_flavor_saves_through_the_same_table(
    table: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    from ghaf.models import save_model

    register_backend("flavors", "toy", "tests.unit._toy_flavor")
    assert save_model({"weights": [1, 2]}, tmp_path / "m", flavor="toy") == "toy"
    assert (tmp_path / "m" / "toy.json").read_text() == '{"weights": [1, 2]}'


def test_stores_and_buses_open_the_class_for_their_scheme(tmp_path: Path) -> None:
    from ghaf.artifacts.local import LocalBlobStore
    from ghaf.events.memory import InProcessEventBus

    store = open_blob_store(f"file://{tmp_path}/blobs", region="ae-auh-1")
    assert isinstance(store, LocalBlobStore)
    assert isinstance(open_event_bus("memory://"), InProcessEventBus)


def test_the_executor_setting_picks_the_executor(settings: GhafSettings) -> None:
    from ghaf.pipelines.local import LocalExecutor
    from ghaf.pipelines.ray import RayExecutor

    assert isinstance(open_executor(settings), LocalExecutor)
    # Opening Ray starts a cluster; that it is the class chosen for "ray" is enough here.
    assert backend_named("executors", "ray", setting="executor") is RayExecutor


def test_key_provider_is_the_home_key_file_unless_a_kek_is_given(
    settings: GhafSettings, tmp_path: Path
) -> None:
    from ghaf.security.keys import LocalKeyProvider, StaticKeyProvider

    local = open_key_provider(settings)
    assert isinstance(local, LocalKeyProvider) and local.path == settings.kek_path
    kek = base64.b64encode(os.urandom(32)).decode()
    with_kek = load_settings(home=tmp_path / "h", security={"kek": kek, "kek_id": "vault"})
    static = open_key_provider(with_kek)
    assert isinstance(static, StaticKeyProvider) and static.key_id == "vault"


def test_flavors_and_runtimes_come_from_one_table() -> None:
    from ghaf.models.flavors import get_flavor, skops
    from ghaf.serving.runtimes.onnx import OnnxRuntime
    from ghaf.serving.runtimes.sklearn import SklearnRuntime

    assert get_flavor("skops") is skops is flavor_module("skops")
    assert runtime_class("skops") is runtime_class("sklearn") is SklearnRuntime
    assert runtime_class("onnx") is OnnxRuntime


def test_prediction_sinks_by_url(tmp_path: Path) -> None:
    from ghaf.events.memory import InProcessEventBus
    from ghaf.serving.predlog import EventBusSink, ParquetSink

    parquet = open_prediction_sink((tmp_path / "log dir").as_uri(), prefix="predictions-w1")
    assert isinstance(parquet, ParquetSink) and parquet.directory == tmp_path / "log dir"
    bus = open_prediction_sink("events://", events=InProcessEventBus())
    assert isinstance(bus, EventBusSink)
    with pytest.raises(ConfigError, match="needs the platform's event bus"):
        open_prediction_sink("events://")
    with pytest.raises(ConfigError, match="use one of events://, file://"):
        open_prediction_sink("kafka://topic")
