"""The Dockerfile's shape: what a review of the image would check first."""

from __future__ import annotations

import re

from .conftest import ROOT

TEXT = (ROOT / "Dockerfile").read_text()
LINES = [
    line
    for line in TEXT.replace("\\\n", " ").splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def instructions(name: str) -> list[str]:
    return [line for line in LINES if line.split()[0] == name]


def test_multi_stage_on_a_pinned_slim_base():
    bases = instructions("FROM")
    assert len(bases) == 2
    for line in bases:
        image = line.split()[1]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), image


def test_dependencies_install_before_the_code_is_copied():
    order = [
        line.split()[0] + " " + line.split()[1]
        for line in LINES
        if line.split()[0] in ("COPY", "RUN")
    ]
    deps = next(i for i, line in enumerate(LINES) if "-r /tmp/requirements.txt" in line)
    code = next(i for i, line in enumerate(LINES) if line.startswith("COPY shared"))
    assert deps < code, order
    for line in instructions("RUN"):
        if "pip install" in line:
            assert "--no-cache-dir" in line, line


def test_runs_as_a_non_root_user():
    users = instructions("USER")
    assert users and users[-1].split()[1].split(":")[0] not in ("0", "root")
    assert int(users[-1].split()[1].split(":")[0]) >= 10000


def test_relay_is_the_entrypoint_with_a_healthcheck():
    assert instructions("ENTRYPOINT") == ['ENTRYPOINT ["relay"]']
    health = instructions("HEALTHCHECK")
    assert len(health) == 1 and '["relay", "healthcheck"]' in health[0]


def test_dockerignore_keeps_secrets_and_clutter_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", ".env", "tests", "var"):
        assert entry in ignored, entry
