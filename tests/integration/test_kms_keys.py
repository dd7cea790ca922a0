"""A home whose KEK is in AWS KMS (moto's server on 127.0.0.1): init, `ghaf keys` rotate,
destroy and list, no KEK byte in the home, and a rotation killed with SIGKILL that leaves
every artifact readable to a fresh process, then resumes or shreds."""

from __future__ import annotations

import base64
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from ghaf.access.rotation import encrypted_store, managed_keys
from ghaf.backends import open_key_provider
from ghaf.errors import ConfigError
from ghaf.home import init_home
from ghaf.platform import Platform
from ghaf.security.kms import KmsKeyProvider
from ghaf.settings import GhafSettings, load_settings
from tests.kms_emulator import REGION, key_material, kms_endpoint, new_alias

pytestmark = pytest.mark.service

COUNT = 40
ROTATOR = """
import sys
from ghaf.access.rotation import rotate_keys
from ghaf.platform import Platform
from ghaf.settings import load_settings

platform = Platform(load_settings(home=sys.argv[1]))
rotate_keys(platform, platform.admin(), progress=lambda digest: print(digest, flush=True))
print("DONE", flush=True)
"""
READER = """
import json, sys
from ghaf.errors import GhafError
from ghaf.platform import Platform
from ghaf.settings import load_settings

found = {}
with Platform(load_settings(home=sys.argv[1])) as platform:
    for digest in json.loads(sys.argv[2]):
        try:
            platform.artifacts.read_bytes(digest)  # verifies the plaintext digest
            found[digest] = "ok"
        except GhafError as exc:
            found[digest] = f"{type(exc).__name__}: {exc.headline}"
print(json.dumps(found))
"""


@pytest.fixture
def kms_home(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> GhafSettings:
    """Settings of a home whose ghaf.toml names a fresh KMS alias."""
    endpoint = kms_endpoint(request, monkeypatch)
    isolated_env.mkdir(parents=True)
    (isolated_env / "ghaf.toml").write_text(
        "[keys]\n"
        'provider = "kms"\n'
        f'kms_key_id = "{new_alias()}"\n'
        f'kms_region = "{REGION}"\n'
        f'kms_endpoint_url = "{endpoint}"\n'
    )
    return load_settings(home=isolated_env)


def _kms_client(settings: GhafSettings) -> Any:
    return boto3.client("kms", region_name=REGION, endpoint_url=settings.keys.kms_endpoint_url)


def _fill(settings: GhafSettings) -> dict[str, bytes]:
    contents = {}
    with init_home(settings) as platform:
        for index in range(COUNT):
            data = os.urandom(100 + index * 500)
            contents[platform.artifacts.put_bytes(data).digest] = data
    return contents


def _ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def _ghaf_json(home: Path, *args: str) -> Any:
    done = _ghaf(home, *args, "--output", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _read_in_a_fresh_process(home: Path, digests: list[str]) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", READER, str(home), json.dumps(digests)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _kill_rotation_after(home: Path, rewrapped: int) -> None:
    """Start a rotation in another process and SIGKILL it once it has re-wrapped
    ``rewrapped`` artifacts (read from its progress lines, within a deadline)."""
    process = subprocess.Popen(
        [sys.executable, "-c", ROTATOR, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    seen, deadline = 0, time.monotonic() + 90
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while seen < rewrapped:
            left = deadline - time.monotonic()
            assert left > 0, f"the rotation re-wrapped {seen} artifacts in 90 s"
            if not selector.select(timeout=left):
                continue
            line = process.stdout.readline()
            assert line and line.strip() != "DONE", "the rotation ended before the kill"
            seen += 1
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL


def _stored_bytes(home: Path) -> list[bytes]:
    return [path.read_bytes() for path in home.rglob("*") if path.is_file()]


def _forms(secret: bytes) -> list[bytes]:
    return [secret, base64.b64encode(secret), secret.hex().encode()]


@pytest.mark.slow
def test_a_kms_home_rotates_and_destroys_through_ghaf_keys_and_stores_no_kek(
    kms_home: GhafSettings,
) -> None:
    home = kms_home.home
    contents = _fill(kms_home)
    assert not kms_home.kek_path.exists()  # no key file: the KEK is in KMS only
    name = kms_home.keys.kms_key_id
    assert name is not None
    listed = _ghaf_json(home, "keys", "list")
    assert listed["kek"] == "kms." + name.removeprefix("alias/").replace("/", ".")
    assert listed["versions"] == [{"version": 1, "state": "live", "current": True}]

    rotated = _ghaf_json(home, "keys", "rotate")
    assert (rotated["version"], rotated["artifacts"], rotated["rewrapped"]) == (2, COUNT, COUNT)
    destroyed = _ghaf_json(home, "keys", "destroy-version", "1", "--yes")
    assert destroyed == {"version": 1, "shredded": []}
    kms = _kms_client(kms_home)
    v1 = kms.describe_key(KeyId=f"{name}/v1")["KeyMetadata"]
    assert v1["KeyState"] == "PendingDeletion"  # what makes KMS itself refuse it
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyState"] == "Enabled"
    states = {v["version"]: v for v in _ghaf_json(home, "keys", "list")["versions"]}
    assert states[1]["state"].startswith("destroyed (KMS deletes key ")
    assert states[2] == {"version": 2, "state": "live", "current": True}

    with Platform(load_settings(home=home)) as platform:
        store = encrypted_store(platform)
        assert isinstance(managed_keys(platform), KmsKeyProvider)
        data_keys = []
        for digest, data in contents.items():
            assert [h.wrapped.version for h in store.headers(digest)] == [2]
            assert store.read_bytes(digest) == data
            data_keys.append(store.unlock(digest)[1])
    # Neither a KEK (any key the emulator holds) nor a data key is in any file of the
    # home, raw, base64 or hex: data keys are stored only as KMS ciphertext.
    stored = _stored_bytes(home)
    secrets = [form for secret in [*key_material(), *data_keys] for form in _forms(secret)]
    assert len(key_material()) >= 2
    leaked = [secret for secret in secrets if any(secret in blob for blob in stored)]
    assert not leaked


@pytest.mark.slow
def test_a_rotation_killed_under_kms_leaves_every_artifact_readable_and_resumes(
    kms_home: GhafSettings,
) -> None:
    home = kms_home.home
    contents = _fill(kms_home)
    _kill_rotation_after(home, COUNT // 2)
    with Platform(load_settings(home=home)) as platform:
        store = encrypted_store(platform)
        assert managed_keys(platform).rotation_pending() == 2
        versions = [store.headers(d)[0].wrapped.version for d in contents]
        assert 1 in versions and 2 in versions  # really half-way
    assert set(_read_in_a_fresh_process(home, list(contents)).values()) == {"ok"}

    resumed = _ghaf(home, "keys", "rotate")
    assert resumed.returncode == 0, resumed.stderr
    assert "finished the interrupted rotation to KEK version 2" in resumed.stdout
    destroyed = _ghaf(home, "keys", "destroy-version", "1", "--yes")
    assert "0 artifacts are now unreadable" in destroyed.stdout, destroyed.stderr
    with Platform(load_settings(home=home)) as platform:
        store = encrypted_store(platform)
        assert managed_keys(platform).rotation_pending() is None
        for digest in contents:
            assert [h.wrapped.version for h in store.headers(digest)] == [2]
    assert set(_read_in_a_fresh_process(home, list(contents)).values()) == {"ok"}


@pytest.mark.slow
def test_destroying_a_kms_version_shreds_what_a_killed_rotation_did_not_rewrap(
    kms_home: GhafSettings,
) -> None:
    home = kms_home.home
    contents = _fill(kms_home)
    _kill_rotation_after(home, COUNT // 3)
    assert set(_read_in_a_fresh_process(home, list(contents)).values()) == {"ok"}
    refused = _ghaf(home, "keys", "destroy-version", "2", "--yes")
    assert refused.returncode == 3 and "current version" in refused.stderr
    done = _ghaf_json(home, "keys", "destroy-version", "1", "--yes")
    shredded = set(done["shredded"])
    assert COUNT // 3 - 1 <= COUNT - len(shredded) < COUNT  # what was re-wrapped survives

    found = _read_in_a_fresh_process(home, list(contents))
    for digest, outcome in found.items():
        if digest in shredded:
            assert outcome.startswith("NotFoundError: ")
            assert "version 1 was destroyed" in outcome and "crypto-shredded" in outcome
        else:
            assert outcome == "ok"
    finished = _ghaf(home, "keys", "rotate")
    assert finished.returncode == 0, finished.stderr
    assert f"{len(shredded)} unreadable (crypto-shredded)" in finished.stdout


@pytest.fixture
def kms(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    """The emulator's URL and a boto3 client of it (to act as an operator, or a crash)."""
    endpoint = kms_endpoint(request, monkeypatch)
    return endpoint, boto3.client("kms", region_name=REGION, endpoint_url=endpoint)


def _provider(endpoint: str, alias: str) -> KmsKeyProvider:
    return KmsKeyProvider(alias, region=REGION, endpoint_url=endpoint)


CONTEXT = b"artifact sha256:00 project p"


def test_a_rotation_interrupted_between_its_kms_calls_is_taken_up_not_repeated(
    kms: tuple[str, Any],
) -> None:
    """A kill -9 can land between any two KMS calls of begin_rotation: after the new
    version's alias (the key exists, nothing points at it as current), or after the
    rotation's marker (the main alias not moved yet). Beginning again takes up that
    version: no second new key, and the main alias ends on it."""
    endpoint, client = kms
    alias = new_alias()
    keys = _provider(endpoint, alias)
    assert keys.create() is True and keys.create() is False
    old = keys.wrap(os.urandom(32), CONTEXT)
    made = client.create_key()["KeyMetadata"]["KeyId"]  # as begin_rotation's first call
    client.create_alias(AliasName=f"{alias}/v2", TargetKeyId=made)  # ... and its second
    assert keys.current_version() == 1  # killed here: v1 is still current
    assert keys.begin_rotation() == 2
    assert client.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == made
    keys.finish_rotation()

    made = client.create_key()["KeyMetadata"]["KeyId"]
    client.create_alias(AliasName=f"{alias}/v3", TargetKeyId=made)
    client.create_alias(AliasName=f"{alias}/rotating", TargetKeyId=made)  # killed before
    assert keys.rotation_pending() == 3  # the main alias moved
    assert keys.begin_rotation() == 3
    assert keys.current_version() == 3
    assert keys.unwrap(keys.rewrap(old, CONTEXT), CONTEXT) == keys.unwrap(old, CONTEXT)
    keys.finish_rotation()
    assert keys.versions() == {1: "live", 2: "live", 3: "live"}


def test_a_key_made_outside_ghaf_is_adopted_and_an_operators_new_key_is_rotated_to(
    kms: tuple[str, Any],
) -> None:
    """An alias made by the platform team (Terraform) becomes version 1 at `ghaf init`;
    moving the alias to another key of theirs stops writes with the fix named, and
    `ghaf keys rotate` adopts that key as the next version."""
    endpoint, client = kms
    alias = new_alias()
    theirs = client.create_key()["KeyMetadata"]["KeyId"]
    client.create_alias(AliasName=alias, TargetKeyId=theirs)
    keys = _provider(endpoint, alias)
    assert keys.create() is True and keys.versions() == {1: "live"}
    data_key = os.urandom(32)
    old = keys.wrap(data_key, CONTEXT)
    assert client.describe_key(KeyId=f"{alias}/v1")["KeyMetadata"]["KeyId"] == theirs

    replacement = client.create_key()["KeyMetadata"]["KeyId"]
    client.update_alias(AliasName=alias, TargetKeyId=replacement)
    with pytest.raises(ConfigError, match="no version of this KEK") as raised:
        keys.wrap(os.urandom(32), CONTEXT)
    assert "ghaf keys rotate" in str(raised.value.hint)
    assert keys.unwrap(old, CONTEXT) == data_key  # reads go on meanwhile
    assert keys.begin_rotation() == 2
    keys.finish_rotation()
    assert client.describe_key(KeyId=f"{alias}/v2")["KeyMetadata"]["KeyId"] == replacement
    assert keys.unwrap(keys.rewrap(old, CONTEXT), CONTEXT) == data_key


def test_kms_settings_errors_name_the_setting_and_the_fix(isolated_env: Path) -> None:
    with pytest.raises(ConfigError, match=r"keys\.kms_key_id"):
        load_settings(home=isolated_env, keys={"provider": "kms"})
    with pytest.raises(ConfigError, match=r"keys\.kms_key_id"):
        load_settings(home=isolated_env, keys={"provider": "kms", "kms_key_id": "arn:aws:kms:x"})
    kek = base64.b64encode(os.urandom(32)).decode()
    both = load_settings(
        home=isolated_env,
        keys={"provider": "kms", "kms_key_id": "alias/a", "kms_region": REGION},
        security={"kek": kek},
    )
    with pytest.raises(ConfigError, match="two KEKs"):
        open_key_provider(both)
    chosen = open_key_provider(
        load_settings(
            home=isolated_env,
            keys={"provider": "kms", "kms_key_id": "alias/a/b", "kms_region": REGION},
        )
    )
    assert isinstance(chosen, KmsKeyProvider) and chosen.key_id == "kms.a.b"


def test_an_unreachable_kms_is_one_line_and_exit_code_9(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    isolated_env.mkdir(parents=True)
    (isolated_env / "ghaf.toml").write_text(
        '[keys]\nprovider = "kms"\nkms_key_id = "alias/nowhere"\n'
        f'kms_region = "{REGION}"\nkms_endpoint_url = "http://127.0.0.1:9"\n'
    )
    done = _ghaf(isolated_env, "init")
    assert done.returncode == 9, done.stdout + done.stderr
    assert "KMS cannot be reached for ListAliases" in done.stderr
    assert "keys.kms_endpoint_url" in done.stderr and "Traceback" not in done.stderr
