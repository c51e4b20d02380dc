"""docker-compose.yml follows the compose specification and starts in order.

The schema is the compose specification's JSON schema as vendored by the
check-jsonschema package (check_jsonschema/builtin_schemas/vendor/
compose-spec.json, from the compose-spec project), so no download is needed.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any

import jsonschema
import pytest

from .conftest import ROOT

RELAY_SERVICES = ("ingest", "deid", "sender", "api")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_compose_file_matches_the_specification(compose, validator):
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose)
    ]
    assert not errors, "\n".join(errors)


def test_the_schema_rejects_a_bad_file(compose, validator):
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "whenever"
    broken["services"]["api"]["restart_policy"] = "always"
    assert len(list(validator.iter_errors(broken))) >= 2


def test_images_are_pinned(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", f"{name}: {image}"


def test_migration_runs_once_before_the_services(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in RELAY_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name


def test_long_running_services_have_healthchecks(compose):
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue
        assert "test" in service.get("healthcheck", {}), name


def test_workers_share_the_work_store(compose):
    for name in ("ingest", "deid", "sender"):
        assert "relay-data:/var/lib/relay" in compose["services"][name]["volumes"], name
    assert "relay-data" in compose["volumes"]


def test_mirth_has_its_own_postgres(compose):
    mirth = compose["services"]["mirth"]
    assert mirth["environment"]["DATABASE"] == "postgres"
    assert mirth["environment"]["DATABASE_URL"] == "jdbc:postgresql://mirth-db:5432/mirthdb"
    assert mirth["depends_on"]["mirth-db"]["condition"] == "service_healthy"
    ports = " ".join(mirth["ports"])
    for port in ("8080", "8443", "11104"):
        assert f":{port}" in ports
    assert "15672" in " ".join(compose["services"]["rabbitmq"]["ports"])


def test_secrets_come_from_the_env_file_only(compose):
    """Every secret is interpolated from .env (made by deploy/compose/make-env.sh)
    and required: compose stops with a message when .env is missing."""
    text = (ROOT / "docker-compose.yml").read_text()
    secret_names = {
        "POSTGRES_PASSWORD",
        "RABBITMQ_PASSWORD",
        "ORTHANC_PASSWORD",
        "MIRTH_DB_PASSWORD",
        "MIRTH_KEYSTORE_PASSWORD",
        "RELAY_DEID_SECRET",
        "RELAY_API_TOKENS",
    }
    script = (ROOT / "deploy" / "compose" / "make-env.sh").read_text()
    for name in secret_names:
        assert re.search(rf"\$\{{{name}:\?", text), f"{name} is not a required variable"
        assert f"{name}=" in script, f"make-env.sh does not write {name}"
    for match in INTERPOLATION.finditer(text):
        assert match.group(1) in secret_names or ":-" in match.group(0), match.group(0)


def test_grace_period_outlasts_the_drain(compose):
    for name in RELAY_SERVICES:
        service = compose["services"][name]
        grace = int(service["stop_grace_period"].rstrip("s"))
        assert grace > int(service["environment"]["RELAY_SHUTDOWN_GRACE"]), name


def relay_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: s
        for name, s in compose["services"].items()
        if s["image"].split(":")[0] == "dicom-relay"
    }


def test_relay_containers_are_read_only(compose):
    for name, service in relay_services(compose).items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
