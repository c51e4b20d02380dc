"""Containers for the tests: podman, rootful, as these machines allow it.

No Docker daemon and no container registry are reachable; Debian's podman runs
containers rootful with runc (crun fails on the hybrid cgroup layout), cgroupfs,
explicit ulimits (the defaults are above the machine's hard limits) and the host's
network. Base images are stand-ins built from Debian packages
(tests/support/build-standin-base.sh), tagged with the names the Dockerfiles ask for.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).resolve().parent
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
RUN_FLAGS = ["--ulimit", "nofile=10000:10000", "--ulimit", "nproc=4096:4096",
             "--network", "host"]
RELAY_IMAGE = "dicom-relay:test"
RELAY_USER = "10001:10001"


def podman(*args: str, check: bool = True, timeout: float = 300, input: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout,
                            input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])} ... exited {result.returncode}:\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def why_podman_cannot_run() -> str | None:
    """None when containers can run here (installing podman if missing), else why not."""
    if os.geteuid() != 0:
        return "podman runs rootful here: the container tests need root"
    needed = (shutil.which("podman"), shutil.which("debootstrap"),
              Path("/usr/lib/cni/dnsname").exists() or None)
    if None in needed:
        subprocess.run(["bash", str(SUPPORT / "install-system-deps.sh")], check=True)
    probe = subprocess.run([*PODMAN, "info"], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"podman does not run on this machine: {probe.stderr.strip()[-300:]}"
    return None


def base_image(dockerfile: Path) -> str:
    found = re.search(r"^FROM (\S+)", dockerfile.read_text(), re.M)
    assert found, f"no FROM in {dockerfile}"
    return found.group(1)


def ensure_standin_base(name: str, extra_packages: str = "") -> None:
    """Built once per machine: an existing tag is kept."""
    subprocess.run(["bash", str(SUPPORT / "build-standin-base.sh"), name, extra_packages],
                   check=True, timeout=1800, capture_output=True)


def host_pip_paths() -> list[str]:
    """Local folders the host's pip configuration reads (find-links, file:// indexes):
    mounted into builds so that pip there finds what pip here finds."""
    values = [v for k, v in os.environ.items() if k.startswith("PIP_")]
    for path in (Path("/etc/pip.conf"), Path.home() / ".config/pip/pip.conf",
                 Path.home() / ".pip/pip.conf"):
        if path.is_file():
            parser = configparser.ConfigParser()
            parser.read(path)
            values += [v for section in parser.sections() for v in parser[section].values()]
    folders = set()
    for word in (word for value in values for word in value.split()):
        local = Path(word.removeprefix("file://"))
        if local.is_absolute() and local.is_dir():
            # A simple index's pages link to files beside it: ../../files/...
            folders.add(str(local.parent if local.name == "simple" else local))
    return sorted(folders)


def build(context: Path, tag: str, dockerfile: Path | None = None) -> float:
    """Build (podman's layer cache keeps unchanged layers); the seconds it took."""
    mounts = [arg for folder in host_pip_paths() for arg in ("-v", f"{folder}:{folder}:ro")]
    started = time.monotonic()
    podman("build", "--isolation=chroot", "--network", "host", *mounts, "-t", tag,
           *(["-f", str(dockerfile)] if dockerfile else []), str(context), timeout=3600)
    return time.monotonic() - started


def image_size_mb(tag: str) -> float:
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout) / 1e6


@dataclass
class Container:
    name: str

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def exit_code(self) -> int:
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout)

    def stop(self, grace: float = 10) -> int:
        podman("stop", "--time", str(int(grace)), self.name, timeout=grace + 60)
        return self.exit_code()

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


def run_relay_container(name: str, args: list[str], env: dict[str, str], data: Path | None,
                        image: str = RELAY_IMAGE, detach: bool = True,
                        mounts: Sequence[tuple[Path, str]] = ()
                        ) -> Container | subprocess.CompletedProcess[str]:
    """The relay as a deployment runs it: read-only root, the image's own user, the data
    volume its only writable place (and /tmp), the host's network; `mounts`, read-only
    (host folder, path inside), are the Secrets it mounts as files."""
    flags = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
             "--security-opt", "no-new-privileges", *RUN_FLAGS]
    if data is not None:
        flags += ["-v", f"{data}:/var/lib/relay"]
    for folder, inside in mounts:
        flags += ["-v", f"{folder}:{inside}:ro"]
    env_flags = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    if not detach:
        return podman("run", "--rm", *flags, *env_flags, image, *args, check=False,
                      timeout=300)
    podman("rm", "--force", "--time", "0", name, check=False)
    podman("run", "-d", "--name", name, *flags, *env_flags, image, *args)
    return Container(name)


def data_volume(path: Path) -> Path:
    """A host folder the image's user owns, mounted as its data volume."""
    path.mkdir(parents=True, exist_ok=True)
    uid, gid = (int(part) for part in RELAY_USER.split(":"))
    os.chown(path, uid, gid)
    return path
