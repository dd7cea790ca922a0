"""``ghaf deployments export --k8s``: every manifest validates against the Kubernetes, KServe
and Prometheus Operator schemas, and holds the security properties (non-root, read-only root
filesystem, resources, probes, default-deny ingress but the service port, no secret).

Kubernetes kinds: kubernetes-validate's strict schemas (1.30 and 1.36). InferenceService and
ServiceMonitor: the schemas vendored in deploy/schemas (see its README), resolved against the
same Kubernetes definitions.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource

import ghaf.k8s as k8s_package
from ghaf.errors import ConfigError, InvalidInputError
from ghaf.k8s import Scale, ServedVersion, Split, export_manifests, render, write_manifests
from ghaf.settings import KubernetesSettings

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "deploy" / "schemas"
K8S_VERSIONS = ("1.30.0", "1.36.0")
CUSTOM = {
    "InferenceService": "inferenceservice-serving.kserve.io-v1beta1.json",
    "ServiceMonitor": "servicemonitor-monitoring.coreos.com-v1.json",
}
SERVER_PORT = 8700


K8S_SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


@functools.cache
def _registry(version: str) -> Registry[Any]:
    folder = K8S_SCHEMAS / f"v{version}-local-strict"
    definitions = json.loads((folder / "_definitions.json").read_text())
    return Resource.from_contents(definitions) @ Registry()


@functools.cache
def _validator(kind: str, api_version: str, version: str) -> jsonschema.Draft202012Validator:
    """kubernetes-validate's strict schema of ``kind`` (its own file naming), loaded once:
    ``kubernetes_validate.validate`` reads the 3 MB definitions on every call."""
    if kind in CUSTOM:
        schema = json.loads((SCHEMAS / CUSTOM[kind]).read_text())
    else:
        group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        name = f"{kind.lower()}-{group}.json"
        schema = json.loads((K8S_SCHEMAS / f"v{version}-local-strict" / name).read_text())
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


def validate(manifest: dict[str, Any]) -> None:
    """Raise unless ``manifest`` is valid for its kind (through YAML and back, as applied)."""
    applied = yaml.safe_load(render(manifest))
    assert applied == manifest
    versions = ("1.36.0",) if manifest["kind"] in CUSTOM else K8S_VERSIONS
    for version in versions:
        _validator(manifest["kind"], manifest["apiVersion"], version).validate(applied)


def test_the_cached_validators_agree_with_kubernetes_validate() -> None:
    made = export_manifests(KubernetesSettings(), models=[version()])
    for manifest in made:
        if manifest["kind"] not in CUSTOM:
            for k8s_version in K8S_VERSIONS:
                kubernetes_validate.validate(manifest, k8s_version, strict=True)


def containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest["spec"]
    if manifest["kind"] == "InferenceService":
        return list(spec["predictor"]["containers"])
    if manifest["kind"] in ("Deployment", "Job"):
        return list(spec["template"]["spec"]["containers"])
    return []


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    if manifest["kind"] == "InferenceService":
        return dict(manifest["spec"]["predictor"])
    return dict(manifest["spec"]["template"]["spec"])


def check_properties(manifests: list[dict[str, Any]], k8s: KubernetesSettings) -> None:
    kinds = [m["kind"] for m in manifests]
    assert "Secret" not in kinds
    for manifest in manifests:
        validate(manifest)
        assert manifest["metadata"]["namespace"] == k8s.namespace
        for container in containers(manifest):
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) <= set(resources["limits"])
            if manifest["kind"] != "Job":  # a Job's container takes no traffic
                assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container)
            # Writable paths are declared volumes only: the home and /tmp.
            writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
            assert writable == {"/var/lib/ghaf", "/tmp"}
            # Secrets only by reference: no literal value but the home, logs and TLS switches.
            assert {e["name"] for e in container["env"]} <= {
                "GHAF_HOME",
                "GHAF_LOG_FORMAT",
                "GHAF_TLS__CERT_FILE",
                "GHAF_TLS__KEY_FILE",
                "GHAF_TLS__ALLOW_PLAIN_HTTP",
            }
            assert container["envFrom"] == [{"secretRef": {"name": k8s.env_secret}}]
            assert ":" in container["image"] and not container["image"].endswith(":latest")
        if containers(manifest):
            pod = pod_spec(manifest)
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["automountServiceAccountToken"] is False
    check_network_policies(manifests)


def check_network_policies(manifests: list[dict[str, Any]]) -> None:
    """A policy with no rule denies every ingress to the control plane's pods; the only
    other opens the server's port, and nothing else, to the server's pods."""
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if "ingress" not in p["spec"]]
    assert len(deny) == 1 and deny[0]["spec"]["policyTypes"] == ["Ingress"]
    selected = deny[0]["spec"]["podSelector"]["matchLabels"]
    for manifest in manifests:
        if manifest["kind"] in ("Deployment", "Job"):
            pod_labels = manifest["spec"]["template"]["metadata"]["labels"]
            assert selected.items() <= pod_labels.items(), manifest["metadata"]["name"]
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            assert rule["ports"] == [{"protocol": "TCP", "port": SERVER_PORT}]
    server = next(m for m in manifests if m["kind"] == "Service")
    assert [p["port"] for p in server["spec"]["ports"]] == [SERVER_PORT]


def version(name: str = "fraud", number: int = 3) -> ServedVersion:
    return ServedVersion(name, number, "default", "onnx")


def test_the_package_exports_a_pinned_list() -> None:
    assert sorted(k8s_package.__all__) == [
        "Scale",
        "ServedVersion",
        "Split",
        "export_manifests",
        "render",
        "write_manifests",
    ]


def test_the_default_export_validates_and_holds_the_properties() -> None:
    k8s = KubernetesSettings()
    made = export_manifests(k8s, models=[version()])
    assert [m["kind"] for m in made] == [
        "Job",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "NetworkPolicy",
        "Ingress",
        "InferenceService",
        "ServiceMonitor",
    ]
    check_properties(made, k8s)
    predictor = made[8]["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 8)
    assert "canaryTrafficPercent" not in predictor
    (container,) = predictor["containers"]
    assert container["args"][:2] == ["serve", "fraud:3"]
    assert container["image"].startswith("ghaf-inference:")
    # The predictor may take ten minutes to load before the kubelet gives up (kserve#1247).
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 600
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


names = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
model_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,15}[A-Za-z0-9]", fullmatch=True)


@st.composite
def exports(draw: st.DrawFn) -> tuple[KubernetesSettings, dict[str, Any]]:
    mode = draw(st.sampled_from(["RawDeployment", "Serverless"]))
    low = draw(st.integers(0 if mode == "Serverless" else 1, 5))
    server_low = draw(st.integers(1, 4))
    k8s = KubernetesSettings(
        namespace=draw(names),
        host=draw(st.none() | names.map(lambda n: f"{n}.example.com")),
        deployment_mode=mode,
        inference_min_replicas=low,
        inference_max_replicas=draw(st.integers(max(low, 1), 20)),
        inference_scale_metric=draw(st.sampled_from(["concurrency", "rps", "cpu", "memory"])),
        inference_scale_target=draw(st.integers(1, 500)),
        server_min_replicas=server_low,
        server_max_replicas=draw(st.integers(server_low, 10)),
        server_cpu_percent=draw(st.integers(1, 100)),
    )
    model = draw(model_names)
    kwargs: dict[str, Any] = {"models": [version(model, draw(st.integers(1, 99)))]}
    kwargs["gpu"] = draw(st.booleans())
    if mode == "Serverless" and draw(st.booleans()):
        stable, canary = version("live", 1), version("live", draw(st.integers(2, 9)))
        weights = draw(st.tuples(st.floats(0.5, 100), st.floats(0, 100)))
        kwargs["splits"] = [Split("live", dict(zip((stable, canary), weights, strict=True)))]
    return k8s, kwargs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exports())
def test_every_export_validates_and_holds_the_properties(
    case: tuple[KubernetesSettings, dict[str, Any]],
) -> None:
    k8s, kwargs = case
    made = export_manifests(k8s, **kwargs)
    check_properties(made, k8s)
    for manifest in made:
        if manifest["kind"] != "InferenceService":
            continue
        predictor = manifest["spec"]["predictor"]
        # KServe's enums and ranges, which the SDK-derived schema does not carry.
        assert predictor["scaleMetric"] in ("cpu", "memory", "concurrency", "rps")
        assert predictor["minReplicas"] == k8s.inference_min_replicas
        assert predictor["maxReplicas"] == k8s.inference_max_replicas
        assert predictor["scaleTarget"] == k8s.inference_scale_target
        (container,) = predictor["containers"]
        gpus = container["resources"]["limits"].get("nvidia.com/gpu")
        assert (gpus == "1") is kwargs["gpu"]
        annotations = manifest["metadata"]["annotations"]
        assert annotations["serving.kserve.io/deploymentMode"] == k8s.deployment_mode
        if "canaryTrafficPercent" in predictor:
            split = kwargs["splits"][0]
            stable, canary = sorted(split.weights, key=lambda v: v.version)
            share = split.weights[canary] / sum(split.weights.values())
            assert abs(predictor["canaryTrafficPercent"] - 100 * share) <= 0.5
            assert 0 <= predictor["canaryTrafficPercent"] <= 100
            assert container["args"][1] == canary.ref
            assert annotations["ghaf.dev/stable"] == stable.ref
    monitors = [m for m in made if m["kind"] == "ServiceMonitor"]
    assert bool(monitors) is (k8s.deployment_mode == "RawDeployment")


def test_the_schemas_refuse_what_kubernetes_and_kserve_would() -> None:
    """The validators have teeth: an unknown field, a wrong type, a missing field fail."""
    made = export_manifests(KubernetesSettings(), models=[version()])
    isvc, monitor = made[-2], made[-1]
    broken = json.loads(json.dumps(isvc))
    broken["spec"]["predictor"]["minReplica"] = 1  # a typo of minReplicas
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        validate(broken)
    broken = json.loads(json.dumps(isvc))
    broken["spec"]["predictor"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    with pytest.raises(jsonschema.ValidationError, match="readOnlyRootFS"):
        validate(broken)  # a Kubernetes type inside KServe's, checked strictly
    broken = json.loads(json.dumps(isvc))
    broken["spec"]["predictor"]["maxReplicas"] = "4"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    broken = json.loads(json.dumps(isvc))
    del broken["spec"]["predictor"]
    with pytest.raises(jsonschema.ValidationError, match="predictor"):
        validate(broken)
    broken = json.loads(json.dumps(monitor))
    broken["spec"]["endpoints"][0]["bearerTokenFiles"] = "/x"
    with pytest.raises(jsonschema.ValidationError, match="bearerTokenFiles"):
        validate(broken)
    deployment = json.loads(json.dumps(made[1]))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(jsonschema.ValidationError, match="resource"):
        validate(deployment)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.36.0", strict=True)


@pytest.mark.parametrize(
    ("k8s", "kwargs", "words"),
    [
        (KubernetesSettings(), {"max_replicas": 0}, "--max-replicas 0 is below 1"),
        (KubernetesSettings(), {"min_replicas": 3, "max_replicas": 2}, "is below 3"),
        (KubernetesSettings(), {"min_replicas": -1}, "--min-replicas -1 is negative"),
        (KubernetesSettings(), {"min_replicas": 0}, "needs KServe's Serverless mode"),
        (KubernetesSettings(), {"models": [version("9lives")]}, "cannot name an Inference"),
        (
            KubernetesSettings(),
            {"splits": [Split("live", {version("live", 1): 90, version("live", 2): 10})]},
            "canaryTrafficPercent needs Serverless mode",
        ),
        (
            KubernetesSettings(deployment_mode="Serverless"),
            {"splits": [Split("live", {version("live", n): 1 for n in (1, 2, 3)})]},
            "between two revisions only",
        ),
        (
            KubernetesSettings(),
            {"models": [version("live")], "splits": [Split("live", {version("live", 2): 1})]},
            "two InferenceServices would be named live",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_fix(
    k8s: KubernetesSettings, kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidInputError, match=words) as caught:
        export_manifests(k8s, **kwargs)
    assert caught.value.hint


def test_reversed_server_bounds_are_a_config_error() -> None:
    k8s = KubernetesSettings(server_min_replicas=5, server_max_replicas=2)
    with pytest.raises(ConfigError, match="server_min_replicas 5"):
        export_manifests(k8s)


def test_scale_takes_the_command_line_over_the_settings() -> None:
    k8s = KubernetesSettings(deployment_mode="Serverless")
    assert Scale.from_settings(k8s, min_replicas=0, max_replicas=9) == Scale(0, 9, "concurrency", 8)


def test_manifests_are_written_one_file_per_object(tmp_path: Path) -> None:
    made = export_manifests(KubernetesSettings(), models=[version()])
    written = write_manifests(made, tmp_path / "out")
    assert [p.name for p in written][:2] == [
        "01-job-ghaf-migrate-0-1-0.yaml",
        "02-deployment-ghaf-server.yaml",
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in written]
    assert [yaml.safe_load(p.read_text()) for p in written] == made
    assert "&id" not in written[1].read_text()  # no YAML anchors for shared label maps
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is not a directory"):
        write_manifests(made, tmp_path / "file")


# The command, as a user types it, on a home with registered, approved versions -----------


def run_ghaf(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghaf", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("GHAF_")},
        check=False,
    )


VIEWER_TOKEN = "viewer-token"
"""Where the module's home keeps the token of a viewer of its project (for remote mode)."""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny:1`` and ``tiny:2`` registered and approved; deployment ``live`` 90/10; a
    viewer's token in ``VIEWER_TOKEN`` beside the home.

    One home for the module: the commands below only read it.
    """
    from ghaf.home import init_home
    from ghaf.models import save_model
    from ghaf.registry import approve_model_version, register_model
    from ghaf.serving.deployments import create_deployment
    from ghaf.settings import load_settings
    from ghaf.testing.people import mint
    from tests.unit.k8s.onnx_model import tiny_onnx
    from tests.unit.serving.server_processes import second_person

    work = tmp_path_factory.mktemp("k8s-home")
    with init_home(load_settings(home=work / "home")) as platform:
        admin, approver = platform.admin(), second_person(platform)
        for number in (1, 2):
            save_model(tiny_onnx(), work / f"m{number}")
            registered = register_model(platform, admin, "tiny", work / f"m{number}")
            assert registered.version == number
            approve_model_version(platform, approver, registered.ref)
        create_deployment(platform, admin, "live", {"tiny:1": 90, "tiny:2": 10})
        token = mint(platform, "vera", ["viewer"], project="default", bind_on="default")
        (work / VIEWER_TOKEN).write_text(token)
        return platform.settings.home


EXPORT = (
    *("deployments", "export", "--k8s", "--model", "tiny:1", "--deployment", "live"),
    *("--mode", "Serverless", "--min-replicas", "0", "--output", "json"),
)


def test_the_cli_exports_a_model_and_a_canary(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    done = run_ghaf(home, *EXPORT, "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    manifests = [yaml.safe_load(Path(f).read_text()) for f in report["files"]]
    assert report["kinds"] == [m["kind"] for m in manifests]
    check_properties(manifests, KubernetesSettings(deployment_mode="Serverless"))
    services = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "InferenceService"}
    assert set(services) == {"tiny", "live"}
    canary = services["live"]["spec"]["predictor"]
    assert canary["canaryTrafficPercent"] == 10 and canary["minReplicas"] == 0
    assert canary["containers"][0]["args"][1] == "tiny:2"
    assert services["live"]["metadata"]["annotations"]["ghaf.dev/stable"] == "tiny:1"
    assert "canaryTrafficPercent" not in services["tiny"]["spec"]["predictor"]


@pytest.mark.parametrize(
    ("args", "code", "headline"),
    [
        (["--model", "tiny:7"], 4, "error: model version tiny:7 does not exist"),
        (["--deployment", "gone"], 4, "error: deployment 'gone'"),
        (["--min-replicas", "3", "--max-replicas", "2"], 3, "error: --max-replicas 2 is below 3"),
        (["--mode", "Knative"], 3, "error: --mode 'Knative' is not a KServe deployment mode"),
        ([], 3, "error: no format chosen"),
    ],
)
def test_the_cli_refuses_bad_input_in_one_line(
    home: Path, tmp_path: Path, args: list[str], code: int, headline: str
) -> None:
    k8s = [] if not args else ["--k8s"]
    done = run_ghaf(home, "deployments", "export", *k8s, "--out", str(tmp_path / "o"), *args)
    assert done.returncode == code, done.stderr
    assert done.stderr.startswith(headline), done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()  # nothing written when refused


@pytest.mark.slow
def test_a_client_of_a_server_exports_the_same_manifests(home: Path, tmp_path: Path) -> None:
    """Remote mode: a viewer's token and the server's URL, no home; the same files."""
    from tests.unit.serving.server_processes import ServerProcess

    embedded = run_ghaf(home, *EXPORT, "--out", str(tmp_path / "embedded"))
    assert embedded.returncode == 0, embedded.stderr
    server = ServerProcess(home, ("server",), "/health", tmp_path / "server.log").start()
    try:
        token = (home.parent / VIEWER_TOKEN).read_text()
        remote = run_ghaf(
            tmp_path / "no-home",
            *("--url", server.url, "--token", token),
            *EXPORT,
            *("--out", str(tmp_path / "remote")),
        )
    finally:
        log = server.stop()
    assert remote.returncode == 0, remote.stderr
    assert "Traceback" not in log
    files = sorted(p.name for p in (tmp_path / "embedded").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "remote").iterdir())
    for name in files:
        assert (tmp_path / "remote" / name).read_text() == (
            tmp_path / "embedded" / name
        ).read_text()


def test_a_kubernetes_name_in_settings_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from ghaf.settings import load_settings

    monkeypatch.setenv("GHAF_KUBERNETES__ENV_SECRET", "Ghaf_Env")
    with pytest.raises(ConfigError, match="GHAF_KUBERNETES__ENV_SECRET") as caught:
        load_settings()
    assert "lowercase letters, digits and '-'" in caught.value.headline
    monkeypatch.setenv("GHAF_KUBERNETES__ENV_SECRET", "ghaf-prod-env")
    monkeypatch.setenv("GHAF_KUBERNETES__INFERENCE_SCALE_METRIC", "gpu")
    with pytest.raises(ConfigError, match="INFERENCE_SCALE_METRIC"):
        load_settings()
