from pathlib import Path

import pytest

from relay_shared.settings import Destination, SettingsError, load_settings


def test_defaults_run_on_one_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.sqlalchemy_url.startswith("sqlite:///")
    assert settings.amqp_url is None
    assert settings.destinations == [Destination.OUTBOX]
    assert settings.incoming_dir == Path("var/incoming")
    assert settings.deid_queue == "relay.deid"


def test_orthanc_url_makes_orthanc_the_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_ORTHANC_URL", "http://127.0.0.1:8042")
    assert load_settings().destinations == [Destination.ORTHANC]


def test_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_DESTINATIONS", "outbox, orthanc")
    monkeypatch.setenv("RELAY_ORTHANC_URL", "http://127.0.0.1:8042")
    monkeypatch.setenv("RELAY_API_TOKENS", "reader:" + "a" * 64 + ",admin:" + "b" * 64)
    settings = load_settings()
    assert settings.destinations == [Destination.OUTBOX, Destination.ORTHANC]
    assert len(settings.api_tokens) == 2


def test_the_broker_may_be_a_list_of_cluster_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    urls = "amqp://u:p@node-0:5672/, amqps://u:p@node-1:5671/"
    monkeypatch.setenv("RELAY_AMQP_URL", urls)
    assert load_settings().amqp_url == urls


@pytest.mark.parametrize(("name", "value"), [
    ("RELAY_API_PORT", "eighty"),
    ("RELAY_DATABASE_URL", "mysql://x"),
    ("RELAY_AMQP_URL", "http://broker"),
    ("RELAY_AMQP_URL", "amqp://node-0:5672/,http://node-1:5672/"),
    ("RELAY_MAX_ATTEMPTS", "0"),
    ("RELAY_QUEUE_PREFIX", "bad prefix!"),
])
def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str,
                                          value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_orthanc_destination_needs_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_DESTINATIONS", "orthanc")
    with pytest.raises(SettingsError, match="RELAY_ORTHANC_URL"):
        load_settings()
