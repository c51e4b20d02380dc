"""`relay config check` and the start-up checks it shares with the services: a missing
tool, a misspelt variable or a bad value is one line naming it, and secrets never show."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from relay_api.auth import hash_token
from tests.support.services import AMQP_URL, free_port, relay_env, run_relay

# Only the virtualenv on PATH: no tesseract, as in an image built without it.
NO_TOOLS = str(Path(sys.executable).parent)


def test_deid_without_tesseract_stops_with_one_line_naming_the_package(tmp_path: Path) -> None:
    env = relay_env({}, data_dir=tmp_path / "var", metrics_port=0)
    run_relay("db", "upgrade", env=env)
    result = run_relay("deid", env=dict(env, PATH=NO_TOOLS), check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "RELAY_PIXEL_OCR" in result.stderr and "apt-get install tesseract-ocr" in result.stderr


def test_tesseract_without_english_data_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "tessdata"
    empty.mkdir()
    env = relay_env({}, data_dir=tmp_path / "var")
    result = run_relay("config", "check", env=dict(env, TESSDATA_PREFIX=str(empty)),
                       check=False)
    assert result.returncode == 2
    assert "tesseract-ocr-eng" in result.stderr


def test_ocr_off_needs_no_tesseract(tmp_path: Path) -> None:
    env = relay_env({}, data_dir=tmp_path / "var", pixel_ocr="false")
    result = run_relay("config", "check", env=dict(env, PATH=NO_TOOLS), check=False)
    assert result.returncode == 0, result.stderr
    assert "RELAY_PIXEL_OCR=False" in result.stdout


def test_a_misspelt_variable_is_named(tmp_path: Path) -> None:
    env = relay_env({}, data_dir=tmp_path / "var", scp_ae_titel="RELAY")
    result = run_relay("config", "check", env=env, check=False)
    assert result.returncode == 2
    assert "RELAY_SCP_AE_TITEL: no such setting" in result.stderr


def test_a_misspelt_secret_file_is_named(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "RELAY_DEID_SECRETT").write_text("x" * 32)
    env = relay_env({"RELAY_SECRETS_DIR": str(secrets)}, data_dir=tmp_path / "var")
    result = run_relay("config", "check", env=env, check=False)
    assert result.returncode == 2
    assert "RELAY_DEID_SECRETT: no such setting" in result.stderr


@pytest.mark.parametrize(("setting", "value", "named"), [
    ("api_port", "eighty", "RELAY_API_PORT"),
    ("api_tokens", "boss:abc", "RELAY_API_TOKENS"),
    ("destinations", "orthanc", "RELAY_ORTHANC_URL"),
    ("pixel_rules", "/nonexistent/rules.yaml", "RELAY_PIXEL_RULES"),
    ("signing_key", "/nonexistent/signing.pem", "RELAY_SIGNING_KEY: neither a PEM key"),
])
def test_a_bad_value_is_named(tmp_path: Path, setting: str, value: str, named: str) -> None:
    env = relay_env({}, data_dir=tmp_path / "var", **{setting: value})
    result = run_relay("config", "check", env=env, check=False)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_effective_settings_are_printed_with_secrets_masked(tmp_path: Path) -> None:
    secrets = {"deid": "deid-secret-value-0123456789", "amqp": "broker-pass-9876",
               "orthanc": "orthanc-pass-5432", "key": "vault-key-material-abcdef0123456789",
               "followed": "clinical-pass-1111"}
    env = relay_env({}, data_dir=tmp_path / "var", deid_secret=secrets["deid"],
                    amqp_url=f"amqp://relay:{secrets['amqp']}@127.0.0.1:5672/",
                    orthanc_url="http://127.0.0.1:8042", orthanc_password=secrets["orthanc"],
                    identifier_keys=f"k1:{secrets['key']}",
                    api_tokens=f"reader:{hash_token('t')}", scp_port=104,
                    follow_orthanc_urls="http://a:8042,"
                                        f"http://pacs:{secrets['followed']}@b:8042")
    result = run_relay("config", "check", env=env)
    for value in secrets.values():
        assert value not in result.stdout + result.stderr
    lines = set(result.stdout.splitlines())
    assert {"RELAY_DEID_SECRET=****", "RELAY_AMQP_URL=amqp://relay:****@127.0.0.1:5672/",
            "RELAY_ORTHANC_PASSWORD=****", "RELAY_IDENTIFIER_KEYS=k1:****",
            "RELAY_API_TOKENS=reader:****", "RELAY_SCP_PORT=104",
            "RELAY_DESTINATIONS=orthanc",
            "RELAY_FOLLOW_ORTHANC_URLS=http://a:8042,http://pacs:****@b:8042"} <= lines


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.orthanc
def test_connect_reaches_database_broker_and_orthanc(tmp_path: Path, postgres_url: str,
                                                     orthanc_server) -> None:  # type: ignore[no-untyped-def]
    env = relay_env({}, data_dir=tmp_path / "var", database_url=postgres_url,
                    amqp_url=AMQP_URL, orthanc_url=orthanc_server.url)
    before = run_relay("config", "check", "--connect", env=env, check=False)
    assert before.returncode == 2 and "RELAY_DATABASE_URL" in before.stderr  # not migrated
    run_relay("db", "upgrade", env=env)
    assert "configuration ok" in run_relay("config", "check", "--connect", env=env).stdout
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    result = run_relay("config", "check", "--connect", env=dict(env, RELAY_AMQP_URL=dead),
                       check=False)
    assert result.returncode == 2 and "RELAY_AMQP_URL: unreachable" in result.stderr


def test_a_taken_metrics_port_stops_the_service_with_one_line_naming_it(tmp_path: Path) -> None:
    import socket

    env = relay_env({}, data_dir=tmp_path / "var", pixel_ocr="false")
    run_relay("db", "upgrade", env=env)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_relay("sender", env=dict(env, RELAY_METRICS_PORT=str(port)), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"RELAY_METRICS_PORT={port} is in use" in result.stderr


def test_a_service_is_checked_for_what_it_needs_not_its_neighbours(tmp_path: Path) -> None:
    """A sender's image or pod needs no Tesseract; deid's does."""
    env = dict(relay_env({}, data_dir=tmp_path / "var"), PATH=NO_TOOLS)
    assert run_relay("config", "check", "--service", "sender", env=env).returncode == 0
    for services in (["--service", "deid"], []):
        result = run_relay("config", "check", *services, env=env, check=False)
        assert result.returncode == 2 and "RELAY_PIXEL_OCR" in result.stderr
    result = run_relay("config", "check", "--service", "mirth", env=env, check=False)
    assert result.returncode == 2 and "no such service: mirth" in result.stderr
