"""`make test`'s Debian packages: installed without recommends, and the policy-rc.d that
holds Orthanc back during the install does not outlive it (it would stop every later
package's service from starting on that machine).

The script runs for real on a clean Debian root (the stand-in base image); only
apt-get is a stand-in that notes how it was called, so no package is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import containers

APT_STUB = """#!/bin/sh
[ -e /usr/sbin/policy-rc.d ] && held=held || held=free
echo "$held $*" >> /log/apt.log
"""


def test_system_deps_come_without_recommends_and_leave_no_policy_rc_d(
        podman_ready: None, tmp_path: Path) -> None:
    base = containers.base_image(containers.ROOT / "Dockerfile")
    containers.ensure_standin_base(base)
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "apt-get").write_text(APT_STUB)
    (stub / "apt-get").chmod(0o755)
    script = containers.SUPPORT / "install-system-deps.sh"
    result = containers.podman(
        "run", "--rm", *containers.RUN_FLAGS, "-v", f"{script}:/deps.sh:ro",
        "-v", f"{stub}:/stub:ro", "-v", f"{tmp_path}:/log", base, "bash", "-c",
        # A machine with no policy-rc.d of its own (the Debian image carries one).
        "rm -f /usr/sbin/policy-rc.d && PATH=/stub:$PATH bash /deps.sh && "
        "if [ -e /usr/sbin/policy-rc.d ]; "
        "then echo policy-rc.d left; else echo policy-rc.d gone; fi")
    assert result.stdout.strip().endswith("policy-rc.d gone"), result.stdout
    calls = (tmp_path / "apt.log").read_text().splitlines()
    installs = [call for call in calls if " install " in f" {call} "]
    assert installs, calls
    for call in installs:
        assert call.startswith("held "), call  # Orthanc's service cannot start meanwhile
        assert "--no-install-recommends" in call.split(), call
        assert {"orthanc", "podman", "tesseract-ocr-eng"} <= set(call.split()), call
