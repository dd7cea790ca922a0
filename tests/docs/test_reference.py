"""The generated references cover the code, and the hand-written formats miss no key."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest

from ghaf.cli.exit_codes import EXIT_CODES
from ghaf.cli.main import COMMANDS
from ghaf.data import contracts
from ghaf.features import definitions
from ghaf.settings import GhafSettings
from tests.docs.reference_module import ROOT, load

docs = load()


def test_every_setting_is_in_the_settings_reference() -> None:
    page = docs.settings_page()
    expected = []
    for name, info in GhafSettings.model_fields.items():
        nested = getattr(info.annotation, "model_fields", None)
        if nested is None:
            expected.append((name, f"GHAF_{name.upper()}", info.description))
        else:
            expected += [
                (f"{name}.{sub}", f"GHAF_{name.upper()}__{sub.upper()}", sub_info.description)
                for sub, sub_info in nested.items()
            ]
    for key, env, description in expected:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{key}` |")), "")
        assert f"`{env}`" in row, key
        assert description and docs.cell(description) in row, key
    assert f"{len(expected)} settings." in page


def test_the_settings_reference_gives_types_and_defaults() -> None:
    rows = {row[0]: row for row in docs.setting_rows()}
    assert rows["home"][2:4] == ("Path", "~/.ghaf")
    assert rows["event_bus_url"][2:4] == ("str", '"memory://"')
    assert rows["executor"][2] == '"local" | "ray"'
    assert rows["security.residency"][3] == '{"pii": ["ae-*"], "resident:ae": ["ae-*"]}'
    assert rows["tls.allow_plain_http"][1:4] == ("GHAF_TLS__ALLOW_PLAIN_HTTP", "bool", "false")


def test_every_cli_command_is_in_the_cli_reference() -> None:
    page = docs.cli_page()
    names = [name for name, _ in docs.cli_commands()]
    assert {f"ghaf {name}" for name, _, _ in COMMANDS} <= set(names)
    assert "ghaf models approve" in names and "ghaf pipelines triggers run" in names
    for name in names:
        assert re.search(rf"^#+ {re.escape(name)}$", page, re.M), name
    assert "| `--contract, -c` | Data contract (YAML). |" in page


def test_the_exit_code_table_is_the_code_table() -> None:
    table = docs.exit_code_table()
    for kind, code in EXIT_CODES:
        assert f"| {code} | `{kind.__name__}`: " in table
    # Commands whose help gives their own exit codes are listed from that help.
    assert "`ghaf monitor drift`: " in table and "exit 1 when any column drifted" in table
    assert "`ghaf pipelines run`: " in table and "130 if interrupted" in table


def test_readme_exit_codes_are_up_to_date() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert docs.readme_with_exit_codes(readme) == readme, (
        "README.md's exit codes differ from the code: run python scripts/docs_reference.py --readme"
    )


@pytest.mark.slow
def test_every_route_is_in_the_http_reference() -> None:
    document = docs.cached_openapi()
    page = docs.http_page()
    assert document["paths"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert f"### {method.upper()} `{path}`" in page
            assert f"Action: `{operation['x-ghaf-action']}`." in page


def test_policy_formats_list_every_key() -> None:
    from ghaf.evaluation.policy import GatePolicy
    from ghaf.registry.release import ReleasePolicy

    page = docs.policies_page()
    for model in (GatePolicy, ReleasePolicy):
        for name in model.model_fields:
            assert f"| `{name}` |" in page, name
    assert "| `requires.approvals` |" in page and "| `champion.confidence` |" in page


def test_roles_reference_lists_every_role() -> None:
    import yaml

    policy = yaml.safe_load((ROOT / "src/ghaf/security/policy.yaml").read_text())
    page = docs.roles_page()
    for role in policy["roles"]:
        assert f"| `{role}` |" in page


def test_contract_and_feature_guide_describes_every_key() -> None:
    guide = (ROOT / "docs/guides/contracts-and-features.md").read_text(encoding="utf-8")
    keys = set(contracts._TOP_KEYS) | set(contracts._COLUMN_KEYS)
    for kind, cls in contracts.CHECK_KINDS.items():
        keys.add(kind)
        keys |= {f.name for f in dataclasses.fields(cls)}
    keys |= set(contracts._SIMPLE_TYPES) | set(definitions.DTYPES)
    # The feature YAML loader's keys, read from its source so a new key cannot be missed.
    source = inspect.getsource(definitions.definitions_from_yaml)
    keys |= set(re.findall(r"""(?:raw|source|doc|f)(?:\.get\(|\[)["'](\w+)["']""", source))
    assert {"join_keys", "ttl_seconds", "created_timestamp_field", "inputs"} <= keys
    missing = sorted(k for k in keys if f"`{k}`" not in guide)
    assert not missing, f"docs/guides/contracts-and-features.md does not describe {missing}"
