"""The Kubernetes manifests, as far as a machine without a cluster can take them: every
relay container of every rendered overlay runs in the image with the rendered ConfigMap
and env (the Secrets as deploy/k8s/create-secrets.sh makes them, with its random
values) through `relay config check`, so a wrong setting name or value in a manifest
fails here; then each service starts with its rendered env and args, and its startup,
liveness and readiness probes answer on the manifest's paths and ports.

What cannot run here: the cluster itself (scheduling, Services' DNS, the PVC, network
policies, KEDA). The cluster addresses in the env (postgres:5432, rabbitmq:5672,
orthanc:8042) are pointed at the tests' own services for the start, and the ports move
to free loopback ports: each probe's port must be the one its process listens on by its
settings, and is then asked on the port it moved to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import OVERLAYS, relay_containers
from tests.deploy.containers.deployment import _healthy
from tests.support import containers
from tests.support.containers import Container, run_relay_container
from tests.support.services import AMQP_URL, Orthanc, free_port, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.orthanc, pytest.mark.slow]

# A stand-in kubectl for create-secrets.sh: no Secret exists yet, each one created is
# written down as JSON.
FAKE_KUBECTL = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
if args[:1] == ["-n"]:
    args = args[2:]
if args[:1] == ["get"]:
    sys.exit(0 if args[1] == "namespace" else 1)
if args[:3] == ["create", "secret", "generic"]:
    data = dict(a.removeprefix("--from-literal=").split("=", 1) for a in args[4:])
    with open(os.environ["SECRETS_OUT"], "a") as out:
        out.write(json.dumps({{args[3]: data}}) + "\\n")
if args[:3] == ["create", "secret", "tls"]:
    files = dict(a.removeprefix("--").split("=", 1) for a in args[4:])
    data = {{"tls.crt": open(files["cert"]).read(), "tls.key": open(files["key"]).read()}}
    with open(os.environ["SECRETS_OUT"], "a") as out:
        out.write(json.dumps({{args[3]: data}}) + "\\n")
"""
PORT_SETTINGS = ("RELAY_API_PORT", "RELAY_METRICS_PORT", "RELAY_SCP_PORT")


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("k8s-secrets")
    (root / "kubectl").write_text(FAKE_KUBECTL)
    (root / "kubectl").chmod(0o755)
    out = root / "secrets.jsonl"
    subprocess.run(["sh", str(containers.ROOT / "deploy/k8s/create-secrets.sh"), "relay-test"],
                   env=dict(os.environ, PATH=f"{root}:{os.environ['PATH']}",
                            SECRETS_OUT=str(out)), check=True, capture_output=True)
    made: dict[str, dict[str, str]] = {}
    for line in out.read_text().splitlines():
        made.update(json.loads(line))
    return made


def container_env(objects: list[dict[str, Any]], container: dict[str, Any],
                  secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The environment Kubernetes would give the container."""
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]])
        else:
            env.update(secrets[source["secretRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = maps[ref["name"]][ref["key"]]
    return env


def secret_mounts(workload: dict[str, Any], container: dict[str, Any],
                  secrets: dict[str, dict[str, str]], root: Path) -> list[tuple[Path, str]]:
    """The Secrets the container mounts as files, written where podman mounts them from,
    readable by the image's user as Kubernetes makes them: (host folder, mount path)."""
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    mounts = []
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret is None:
            continue
        folder = containers.data_volume(root / f"{uuid.uuid4().hex[:6]}-{mount['name']}")
        for key, value in secrets[secret["secretName"]].items():
            (folder / key).write_text(value)
            shutil.chown(folder / key, *(int(p) for p in containers.RELAY_USER.split(":")))
        mounts.append((folder, mount["mountPath"]))
    return mounts


def every_relay_container(rendered: dict[str, list[dict[str, Any]]]
                          ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for overlay in OVERLAYS:
        for workload, container in relay_containers(rendered[overlay]):
            yield overlay, workload, container


def test_every_relay_container_passes_config_check_with_its_rendered_settings(
        relay_image: str, rendered: dict[str, list[dict[str, Any]]],
        secrets: dict[str, dict[str, str]], data: Path) -> None:
    checked = []
    for overlay, workload, container in every_relay_container(rendered):
        env = container_env(rendered[overlay], container, secrets)
        # The service the container runs: its own needs, not its neighbours' (a signing
        # key is the sender's and the api's, not deid's).
        service = container.get("args", ["db"])[0]
        result = run_relay_container("", ["config", "check", "--service", service], env, data,
                                     relay_image, detach=False)
        assert not isinstance(result, Container)
        where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
        assert result.returncode == 0, f"{where}: {result.stderr}"
        checked.append(where)
    assert len(checked) >= 2 * 5, checked  # ingest, deid, sender, api, db upgrade, per overlay


def test_a_misspelt_setting_in_a_manifest_fails_the_check(
        relay_image: str, rendered: dict[str, list[dict[str, Any]]],
        secrets: dict[str, dict[str, str]], data: Path) -> None:
    _, _, container = next(every_relay_container(rendered))
    env = container_env(rendered["dev"], container, secrets)
    env["RELAY_SHUTDOWN_GRACE_SECONDS"] = env.pop("RELAY_SHUTDOWN_GRACE")
    result = run_relay_container("", ["config", "check"], env, data, relay_image, detach=False)
    assert not isinstance(result, Container)
    assert result.returncode == 2 and "RELAY_SHUTDOWN_GRACE_SECONDS" in result.stderr


def _on_this_machine(env: dict[str, str], postgres_url: str, queue_prefix: str,
                     orthanc: Orthanc) -> tuple[dict[str, str], dict[int, int]]:
    """The env with the cluster's addresses swapped for the tests' services, and the
    ports moved to free loopback ones: {manifest port: port used here}."""
    moved = {int(env[name]): free_port() for name in PORT_SETTINGS if name in env}
    local = dict(env, RELAY_DATABASE_URL=postgres_url, RELAY_AMQP_URL=AMQP_URL,
                 RELAY_QUEUE_PREFIX=queue_prefix, RELAY_ORTHANC_URL=orthanc.url,
                 RELAY_API_HOST="127.0.0.1", RELAY_SCP_HOST="127.0.0.1")
    local.pop("RELAY_ORTHANC_PASSWORD", None)  # the tests' Orthanc asks for none
    for name in PORT_SETTINGS:
        if name in env:
            local[name] = str(moved[int(env[name])])
    return local, moved


def _probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, str):
        [port] = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
    return int(port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_starts_with_its_rendered_env_and_answers_its_probes(
        overlay: str, relay_image: str, rendered: dict[str, list[dict[str, Any]]],
        secrets: dict[str, dict[str, str]], data: Path, postgres_url: str,
        queue_prefix: str, orthanc: Orthanc) -> None:
    objects = rendered[overlay]
    found = relay_containers(objects)
    [migration] = [c for w, c in found if w["kind"] == "Job"]
    env, _ = _on_this_machine(container_env(objects, migration, secrets), postgres_url,
                              queue_prefix, orthanc)
    result = run_relay_container("", migration["args"], env, data, relay_image, detach=False)
    assert not isinstance(result, Container) and result.returncode == 0, result
    for workload, container in found:
        if workload["kind"] != "Deployment":
            continue
        env, moved = _on_this_machine(container_env(objects, container, secrets),
                                      postgres_url, queue_prefix, orthanc)
        # The data volume only where the manifest mounts it: the root stays read-only.
        mounted = any(m["mountPath"] == "/var/lib/relay"
                      for m in container.get("volumeMounts", []))
        started = run_relay_container(f"relay-k8s-{uuid.uuid4().hex[:6]}-{container['name']}",
                                      container.get("args", []), env,
                                      data if mounted else None, relay_image,
                                      mounts=secret_mounts(workload, container, secrets,
                                                           data.parent))
        assert isinstance(started, Container)
        try:
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container[kind]
                port = _probe_port(container, probe)
                assert port in moved, f"{container['name']} {kind}: nothing listens on {port}"
                url = f"http://127.0.0.1:{moved[port]}{probe['httpGet']['path']}"
                wait_until(lambda u=url, c=started: _healthy(c, u), 90,
                           f"{overlay} {container['name']} {kind} {probe['httpGet']['path']}")
        finally:
            started.remove()
