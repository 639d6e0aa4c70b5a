"""The Kubernetes manifests (`deploy/k8s`): every one valid against the Kubernetes API's schemas,
offline (`kubernetes-validate`), the production overlay as `kubectl kustomize` renders it, and the
settings an operator relies on: probes, the drain, the security context, where the service writes.

No cluster runs here: these checks and checkov's (`deploy/checks/run`, in CI) are what the manifests
have been through (docs/operators/deploying.md, "What was run here and what was only validated, and why")."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support import ROOT

K8S = ROOT / "deploy" / "k8s"
OVERLAY = K8S / "overlays" / "production"
KUBERNETES_VERSION = "1.31"
"""The oldest Kubernetes release still maintained upstream when these were written: every field used
exists there (and in the releases since)."""
KUBECTL_PACKAGE = "kubernetes-client"
"""The Debian package with `kubectl` (and `kubectl kustomize`) in it."""
ROLES = {"serve", "worker", "migrate"}

Manifest = dict[str, Any]


def kubectl() -> str:
    """The kubectl executable; AssertionError naming the Debian package when it is missing."""
    found = shutil.which("kubectl")
    assert found, f"kubectl is not installed: apt-get install {KUBECTL_PACKAGE} (Debian package)"
    return found


def render(folder: Path) -> list[Manifest]:
    """What `kubectl kustomize FOLDER` renders, one dict per manifest."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [m for m in yaml.safe_load_all(result.stdout) if m]


@pytest.fixture(scope="module")
def rendered() -> list[Manifest]:
    return render(OVERLAY)


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for manifest in manifests:
        if manifest["kind"] in {"Deployment", "Job"}:
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]


def manifest_files() -> list[Path]:
    """Every manifest file, not the kustomizations (kustomize's own format, not the API's)."""
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) > 10
    return [f for f in files if f.name != "kustomization.yaml"]


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_file_is_valid_against_the_kubernetes_schemas(path: Path) -> None:
    for manifest in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if path.parent == OVERLAY and manifest["kind"] != "Namespace":
            continue  # a patch: only what it changes, checked once applied (below)
        # strict: an unknown or misspelt field is an error, not silently dropped by the API server
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_rendered_overlay_is_valid_and_is_the_whole_line(rendered: list[Manifest]) -> None:
    for manifest in rendered:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert sorted((m["kind"], m["metadata"]["name"]) for m in rendered) == [
        ("ConfigMap", "ivr-settings"),
        ("Deployment", "ivr-web"),
        ("Deployment", "ivr-worker"),
        ("HorizontalPodAutoscaler", "ivr-web"),
        ("Ingress", "ivr"),
        ("Job", "ivr-migrate"),
        ("Namespace", "ivr-production"),
        ("NetworkPolicy", "ivr"),
        ("PodDisruptionBudget", "ivr-web"),
        ("Service", "ivr-web"),
    ]
    assert {m["metadata"].get("namespace", "ivr-production") for m in rendered} == {
        "ivr-production"
    }


def test_the_overlay_pins_the_image_by_digest_and_sets_the_host(rendered: list[Manifest]) -> None:
    for name, spec in pod_specs(rendered):
        for container in spec["containers"]:
            assert "@sha256:" in container["image"], (name, container["image"])
    ingress = one(rendered, "Ingress", "ivr")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == ["support.example.com"]
    assert ingress["spec"]["tls"][0]["hosts"] == ["support.example.com"]
    settings = one(rendered, "ConfigMap", "ivr-settings")["data"]
    assert settings["PUBLIC_BASE_URL"] == "https://support.example.com"
    assert settings["IVR_WRITER"] == "off"  # the base's settings are kept beside the overlay's


def test_each_pod_runs_a_role_of_the_image_locked_down(rendered: list[Manifest]) -> None:
    roles = set()
    for name, spec in pod_specs(rendered):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            roles.update(container["args"][:1])
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            sources = [next(iter(source.values()))["name"] for source in container["envFrom"]]
            assert sources == ["ivr-settings", "ivr-secrets"], name
    assert roles == ROLES


def test_every_folder_the_service_writes_is_a_volume(rendered: list[Manifest]) -> None:
    """With a read-only root filesystem, the spool, the metrics folder and /tmp must be emptyDirs."""
    settings = one(rendered, "ConfigMap", "ivr-settings")["data"]
    web = one(rendered, "Deployment", "ivr-web")["spec"]["template"]["spec"]
    empty_dirs = {v["name"] for v in web["volumes"] if "emptyDir" in v}
    (container,) = web["containers"]
    mounted = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty_dirs}
    assert {settings["IVR_SPOOL_DIR"], settings["PROMETHEUS_MULTIPROC_DIR"], "/tmp"} <= mounted
    credentials = {m["mountPath"] for m in container["volumeMounts"] if m.get("readOnly")}
    for setting in ("IVR_ADMINS", "IVR_AGENT_PINS"):
        assert str(Path(settings[setting]).parent) in credentials


def test_the_web_pods_drain_before_they_stop(rendered: list[Manifest]) -> None:
    """/healthz's 503 takes a pod out of the Service; /livez restarts only a dead process; preStop's
    5 s plus the drain (10 s of answering, 20 s for requests in flight) fit in the 45 s grace."""
    web = one(rendered, "Deployment", "ivr-web")["spec"]["template"]["spec"]
    (container,) = web["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert web["terminationGracePeriodSeconds"] == 45
    drain = int(one(rendered, "ConfigMap", "ivr-settings")["data"]["IVR_DRAIN_SECONDS"])
    assert 5 + drain + 20 < web["terminationGracePeriodSeconds"]


def test_service_budget_autoscaler_and_ingress_point_at_the_web_pods(
    rendered: list[Manifest],
) -> None:
    web = one(rendered, "Deployment", "ivr-web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    (port,) = web["spec"]["template"]["spec"]["containers"][0]["ports"]
    service = one(rendered, "Service", "ivr-web")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    budget = one(rendered, "PodDisruptionBudget", "ivr-web")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] == 1
    autoscaler = one(rendered, "HorizontalPodAutoscaler", "ivr-web")
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "ivr-web"
    assert autoscaler["spec"]["minReplicas"] > budget["spec"]["minAvailable"]
    ingress = one(rendered, "Ingress", "ivr")
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"]["name"] == "ivr-web"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "on"
    assert annotations["nginx.ingress.kubernetes.io/proxy-next-upstream"] == "error timeout"
    policy = one(rendered, "NetworkPolicy", "ivr")
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": port["containerPort"]}]
