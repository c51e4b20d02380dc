"""The kustomize overlays render, and what they render is what a cluster needs."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .conftest import OVERLAYS, ROOT, pod_specs, relay_containers, render

RELAY_DEPLOYMENTS = ("relay-ingest", "relay-deid", "relay-sender", "relay-api")


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_every_part(rendered, overlay):
    objects = rendered[overlay]
    kinds = Counter(o["kind"] for o in objects)
    assert set(by_kind(objects, "Deployment")) >= {*RELAY_DEPLOYMENTS, "orthanc", "mirth"}
    # prod runs the broker and the database on their operators (test_operators.py)
    single = {"postgres", "rabbitmq"} if overlay == "dev" else set()
    assert set(by_kind(objects, "StatefulSet")) == {*single, "mirth-postgres"}
    assert set(by_kind(objects, "Job")) == {"relay-db-upgrade"}
    assert {"relay-ingest", "relay-api", "mirth", "mirth-dicom"} <= set(by_kind(objects, "Service"))
    assert set(by_kind(objects, "Ingress")) == {"relay-api"}
    assert kinds["Namespace"] == 1 and kinds["NetworkPolicy"] >= 5
    assert by_kind(objects, "ConfigMap").keys() == {"relay-config"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_namespaced_by_the_overlay(rendered, overlay):
    objects = rendered[overlay]
    namespace = by_kind(objects, "Namespace")
    assert len(namespace) == 1
    ns = next(iter(namespace))
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == ns, obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deid_has_exactly_one_autoscaler(rendered, overlay):
    """KEDA makes its own HPA: an HPA beside a ScaledObject would fight over replicas."""
    objects = rendered[overlay]
    hpas = [
        o
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
        and o["spec"]["scaleTargetRef"]["name"] == "relay-deid"
    ]
    scaled = [
        o
        for o in objects
        if o["kind"] == "ScaledObject" and o["spec"]["scaleTargetRef"]["name"] == "relay-deid"
    ]
    assert len(hpas) + len(scaled) == 1


def test_prod_scales_deid_on_the_queue(rendered):
    scaled = by_kind(rendered["prod"], "ScaledObject")["relay-deid"]
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == "relay.deid"
    assert trigger["metadata"]["mode"] == "QueueLength"
    auth = by_kind(rendered["prod"], "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["spec"]["secretTargetRef"][0] == {
        "parameter": "host",
        "name": "relay-secrets",
        "key": "RELAY_AMQP_URL",
    }


def test_every_component_renders_alone(kubectl, tmp_path):
    """Each component on the base, so an operator can swap KEDA for the HPA."""
    for component in sorted((ROOT / "k8s" / "components").iterdir()):
        work = tmp_path / component.name
        work.mkdir()
        base = os.path.relpath(ROOT / "k8s" / "base", work)  # kustomize wants relative paths
        (work / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"namespace: test\nresources:\n  - {base}\n"
            f"components:\n  - {os.path.relpath(component, work)}\n"
        )
        assert render(kubectl, work)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(rendered, overlay):
    for _, spec in pod_specs(rendered[overlay]):
        for container in spec["containers"]:
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down(rendered, overlay):
    for workload, spec in pod_specs(rendered[overlay]):
        name = workload["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "resources" in container and container["resources"]["limits"], name
            if name != "mirth":  # its entrypoint rewrites its own configuration
                assert sc["readOnlyRootFilesystem"] is True, name
            if workload["kind"] != "Job":
                assert "livenessProbe" in container and "readinessProbe" in container, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_the_drain(rendered, overlay):
    objects = rendered[overlay]
    config = by_kind(objects, "ConfigMap")["relay-config"]["data"]
    drain = int(config["RELAY_SHUTDOWN_GRACE"])
    deployments = by_kind(objects, "Deployment")
    budgets = {
        o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for o in objects
        if o["kind"] == "PodDisruptionBudget"
    }
    for name in RELAY_DEPLOYMENTS:
        spec = deployments[name]["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > drain, name
        assert name in budgets, f"{name} has no PodDisruptionBudget"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_work_store_is_shared_by_the_workers(rendered, overlay):
    objects = rendered[overlay]
    claim = by_kind(objects, "PersistentVolumeClaim")["relay-data"]
    if overlay == "prod":
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    deployments = by_kind(objects, "Deployment")
    for name in ("relay-ingest", "relay-deid", "relay-sender"):
        spec = deployments[name]["spec"]["template"]["spec"]
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == ["relay-data"], name
        mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert "/var/lib/relay" in mounts
    assert config_value(objects, "RELAY_DATA_DIR") == "/var/lib/relay"


def config_value(objects: list[dict[str, Any]], key: str) -> str:
    return by_kind(objects, "ConfigMap")["relay-config"]["data"][key]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mirth_is_wired_to_its_own_postgres(rendered, overlay):
    mirth = by_kind(rendered[overlay], "Deployment")["mirth"]
    env = {e["name"]: e for e in mirth["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DATABASE"]["value"] == "postgres"
    assert env["DATABASE_URL"]["value"] == "jdbc:postgresql://mirth-postgres:5432/mirthdb"
    ports = {
        p["containerPort"] for p in mirth["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert ports == {8080, 8443, 11104}


def test_prod_exposes_only_dicom_and_the_api(rendered):
    objects = rendered["prod"]
    exposed = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "Service" and o["spec"].get("type") in ("LoadBalancer", "NodePort")
    }
    assert exposed == {"relay-ingest", "mirth-dicom"}
    ingress = by_kind(objects, "Ingress")["relay-api"]
    assert ingress["spec"]["tls"]
    policies = by_kind(objects, "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    open_to_all = set()
    for policy in policies.values():
        for rule in policy["spec"].get("ingress", []):
            if "from" not in rule:
                open_to_all |= {p["port"] for p in rule["ports"]}
    assert open_to_all == {11112, 11104, 8000}


SECRET_REF = re.compile(r"`([a-z0-9-]+)`")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_is_documented_and_created_by_the_script(rendered, overlay):
    """Secrets are never in the repository: each one the manifests use is
    described in the guide and made by deploy/k8s/create-secrets.sh."""
    used: set[tuple[str, str | None]] = set()
    for _, spec in pod_specs(rendered[overlay]):
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    used.add((source["secretRef"]["name"], None))
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used.add((ref["name"], ref["key"]))
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"].get("items", []):
                    used.add((volume["secret"]["secretName"], item["key"]))
    assert not [o for o in rendered[overlay] if o["kind"] == "Secret"]
    guide = (ROOT / "docs" / "deployment.md").read_text()
    script = (ROOT / "deploy" / "k8s" / "create-secrets.sh").read_text()
    for name, key in used:
        assert f"`{name}`" in guide, f"Secret {name} is not in docs/deployment.md"
        assert name in script, f"Secret {name} is not made by create-secrets.sh"
        if key:
            assert key in guide and f"{key}=" in script, (name, key)


# Each secret reaches only the pods that use it.
SECRETS_OF = {
    "relay-ingest": {"relay-deid-secret", "relay-vault-keys"},
    "relay-deid": {"relay-deid-secret", "relay-vault-keys"},
    "relay-sender": {"relay-sender-credentials", "relay-signing-key"},
    "relay-api": {"relay-vault-keys", "relay-api-tokens", "relay-signing-public-key"},
    "relay-db-upgrade": set(),
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_relay_containers_read_the_shared_config_and_only_their_secrets(rendered, overlay):
    for workload, container in relay_containers(rendered[overlay]):
        name = workload["metadata"]["name"]
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"relay-config", "relay-secrets", *SECRETS_OF[name]}, name


def test_prod_ingress_routes_only_the_api_and_the_dashboard(rendered):
    ingress = by_kind(rendered["prod"], "Ingress")["relay-api"]
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {"/api", "/dashboard"}


def test_prod_scp_service_has_a_source_allow_list_and_the_scp_tls(rendered):
    service = by_kind(rendered["prod"], "Service")["relay-ingest"]
    assert service["spec"]["loadBalancerSourceRanges"]
    config = by_kind(rendered["prod"], "ConfigMap")["relay-config"]["data"]
    assert config["RELAY_SCP_ALLOWED_AES"] and config["RELAY_SCP_TLS_CERT"]


def test_no_overlay_needs_a_secret_file():
    """Overlays render from the repository alone: no generator reads a local file."""
    for path in Path(ROOT / "k8s").rglob("kustomization.yaml"):
        text = path.read_text()
        assert "secretGenerator" not in text, path


def test_prod_config_is_one_production_accepts(rendered, monkeypatch):
    """The overlay's settings pass RELAY_ENV=production's refusals, with its one
    named exception (the in-cluster Orthanc over plain HTTP)."""
    from relay_shared.settings import load_settings

    for name in [n for n in os.environ if n.startswith("RELAY_")]:
        monkeypatch.delenv(name)
    config = by_kind(rendered["prod"], "ConfigMap")["relay-config"]["data"]
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.production and [e.value for e in settings.allow_insecure] == ["plain-http"]
