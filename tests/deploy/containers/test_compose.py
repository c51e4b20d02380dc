"""docker-compose.yml for real, with podman-compose: it comes up, a series sent to the
relay's SCP ends DONE at the compose Orthanc, and `down` then `up` keeps every series
and the database.

The rabbitmq, postgres and orthanc images are stand-ins built from Debian's packages
(tests/support/standins/), tagged as the compose file names them. Mirth Connect is in
no registry these machines reach: its services are put under a `mirth` profile by an
override file here, so they do not start (docs/deployment.md says what that leaves
untested). podman 4.3 cannot wait for `service_healthy`, so the test starts the
backing services first and waits for their health checks itself, as a person on that
podman would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import containers
from tests.support.dicom_factory import Patient, SeriesSpec, write_series
from tests.support.services import free_port, wait_until

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow]

STANDINS = {"postgres": "postgres:16.6-bookworm", "rabbitmq": "rabbitmq:3.13.7-management",
            "orthanc": "orthancteam/orthanc:25.2.0"}
MIRTH_OFF = """services:
  mirth-db: {profiles: [mirth]}
  mirth: {profiles: [mirth]}
  mirth-channel: {profiles: [mirth]}
"""
# What podman needs on these machines, for every container podman-compose starts.
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


@dataclass
class Compose:
    project: str
    root: Path
    env: dict[str, str]
    token: str
    secrets: dict[str, str]

    def __call__(self, *args: str, timeout: float = 600) -> str:
        command = [str(Path(sys.executable).with_name("podman-compose")), "--in-pod", "false",
                   "-p", self.project, "--env-file", str(self.root / ".env"),
                   "-f", str(containers.ROOT / "docker-compose.yml"),
                   "-f", str(self.root / "no-mirth.yml"), *args]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True,
                                timeout=timeout, cwd=containers.ROOT)
        assert result.returncode == 0, f"{args}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        return result.stdout

    def container(self, service: str) -> str:
        return containers.podman(
            "ps", "-a", "--format", "{{.Names}}",
            "--filter", f"label=io.podman.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}").stdout.split()[0]

    def up(self) -> None:
        """Backing services, then the migration, then the relay: each after the last is ready."""
        self("up", "-d", "postgres", "rabbitmq", "orthanc")
        for service in ("postgres", "rabbitmq", "orthanc"):
            name = self.container(service)
            wait_until(lambda n=name: containers.podman("healthcheck", "run", n,
                                                        check=False).returncode == 0,
                       180, f"compose {service} to be healthy", interval=2)
        self("up", "-d", "--no-deps", "migrate")
        migrate = self.container("migrate")
        containers.podman("wait", migrate, timeout=300)
        assert containers.podman("inspect", "--format", "{{.State.ExitCode}}",
                                 migrate).stdout.strip() == "0", containers.podman(
            "logs", migrate, check=False).stderr
        self("up", "-d", "--no-deps", "ingest", "deid", "sender", "api")
        wait_until(lambda: _answers(f"{self.api}/healthz"), 180, "the compose api")

    def purge(self) -> None:
        """Everything the project made goes, even after a failed `up`."""
        label = f"label=io.podman.compose.project={self.project}"
        subprocess.run([str(Path(sys.executable).with_name("podman-compose")), "-p",
                        self.project, "-f", str(containers.ROOT / "docker-compose.yml"),
                        "--env-file", str(self.root / ".env"), "down", "--volumes",
                        "--timeout", "5"], env=self.env, capture_output=True, timeout=300,
                       cwd=containers.ROOT)
        for kind, listing in (("container", ["-a", "--format", "{{.Names}}"]),
                              ("volume", ["--format", "{{.Name}}"]),
                              ("network", ["--format", "{{.Name}}"])):
            names = containers.podman(kind, "ls", "--filter", label, *listing,
                                      check=False).stdout.split()
            if names:
                containers.podman(kind, "rm", "--force", *names, check=False)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['RELAY_API_PUBLISH']}"

    @property
    def orthanc(self) -> str:
        return f"http://127.0.0.1:{self.env['ORTHANC_PUBLISH']}"

    def series(self) -> list[dict]:
        response = httpx.get(f"{self.api}/api/v1/series?limit=500", timeout=10,
                             headers={"Authorization": f"Bearer {self.token}"})
        response.raise_for_status()
        return list(response.json()["items"])

    def orthanc_instances(self) -> list[str]:
        return list(httpx.get(f"{self.orthanc}/instances", timeout=10,
                              auth=("relay", self.secrets["ORTHANC_PASSWORD"])).json())


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def compose(relay_image: str, tmp_path: Path) -> Iterator[Compose]:
    for name, tag in STANDINS.items():
        containers.build(containers.SUPPORT / "standins" / name, tag)
    containers.podman("tag", relay_image, "dicom-relay:compose-test")
    made = subprocess.run(["sh", str(containers.ROOT / "deploy/compose/make-env.sh"),
                           str(tmp_path / ".env")], capture_output=True, text=True, check=True)
    token = re.search(r"admin API token .*: (\S+)", made.stdout)
    assert token, made.stdout
    secrets = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
    (tmp_path / "no-mirth.yml").write_text(MIRTH_OFF)
    (tmp_path / "containers.conf").write_text(CONTAINERS_CONF)
    env = dict(os.environ, CONTAINERS_CONF=str(tmp_path / "containers.conf"),
               RELAY_IMAGE_TAG="compose-test", RELAY_STABLE_AGE="3",
               RELAY_SCP_PUBLISH=f"127.0.0.1:{free_port()}", RELAY_API_PUBLISH=str(free_port()),
               ORTHANC_PUBLISH=str(free_port()), RABBITMQ_UI_PUBLISH=str(free_port()))
    project = f"relaytest{uuid.uuid4().hex[:6]}"
    made_compose = Compose(project, tmp_path, env, token.group(1), secrets)
    try:
        yield made_compose
    finally:
        for service in ("ingest", "deid", "sender", "api", "migrate"):
            subprocess.run([*containers.PODMAN, "logs", "--tail", "30",
                            f"{project}_{service}_1"], check=False)
        made_compose.purge()


def test_compose_takes_a_series_by_scp_to_orthanc_and_keeps_it_across_down_and_up(
        compose: Compose, tmp_path: Path) -> None:
    compose.up()
    files = write_series(SeriesSpec(Patient("MRN-K1", "Noether^Emmy"), instances=4),
                         tmp_path / "series")
    host, port = compose.env["RELAY_SCP_PUBLISH"].split(":")
    subprocess.run(["storescu", "-aec", "RELAY", host, port, *map(str, files)], check=True,
                   capture_output=True, timeout=120)
    wait_until(lambda: [s["status"] for s in compose.series()] == ["DONE"], 300,
               "the series to be DONE", interval=1)
    assert len(compose.orthanc_instances()) == 4
    before = json.dumps(compose.series(), sort_keys=True)

    compose("down", "--timeout", "30")
    compose.up()
    assert json.dumps(compose.series(), sort_keys=True) == before  # the database was kept
    assert len(compose.orthanc_instances()) == 4  # and the research PACS's storage
