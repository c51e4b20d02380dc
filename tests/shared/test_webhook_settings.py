"""Webhook configuration is refused with a clear reason when it cannot work, and the
signature is the one receivers are told to check."""

from __future__ import annotations

import json
import time

import pytest

from relay_shared.notify.hooks import Event, series_event, signature
from relay_shared.settings import SettingsError, load_settings
from tests.support.webhook_receiver import verify

HOOK = {"name": "lab", "url": "https://lab.example.org/hook"}


def test_a_hook_without_a_secret_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("RELAY_WEBHOOKS", json.dumps([HOOK]))
    with pytest.raises(SettingsError, match="webhook lab has no secret"):
        load_settings()


def test_a_hook_named_twice_or_a_secret_for_no_hook_is_refused():
    with pytest.raises(SettingsError, match="names a hook twice"):
        load_settings(webhooks=[HOOK, HOOK], webhook_secret="s")
    with pytest.raises(SettingsError, match="names no such hook"):
        load_settings(webhooks=[HOOK], webhook_secret="s", webhook_secrets={"lbs": "t"})


def test_an_unknown_event_is_refused(monkeypatch):
    monkeypatch.setenv("RELAY_WEBHOOKS", json.dumps([HOOK | {"events": ["series.lost"]}]))
    monkeypatch.setenv("RELAY_WEBHOOK_SECRET", "s")
    with pytest.raises(SettingsError, match="RELAY_WEBHOOKS"):
        load_settings()


def test_a_hook_s_own_secret_wins_and_events_default_to_all(monkeypatch):
    monkeypatch.setenv("RELAY_WEBHOOKS", json.dumps([HOOK]))
    monkeypatch.setenv("RELAY_WEBHOOK_SECRET", "shared")
    monkeypatch.setenv("RELAY_WEBHOOK_SECRETS", json.dumps({"lab": "own"}))
    settings = load_settings()
    assert settings.webhook_secret_for("lab") == b"own"
    assert settings.webhooks[0].events == list(Event)


def test_the_signature_is_what_receivers_verify():
    body = b'{"event":"series.done"}'
    signed = signature(b"secret", 1_700_000_000, body)
    # openssl dgst -sha256 -hmac secret over '1700000000.{"event":"series.done"}'
    assert signed == "sha256=12874dc011bc22f5e0cf89aa8fc963056831c4c7a84694b81e24820ff1576054"
    now = int(time.time())
    assert verify(b"secret", str(now), body, signature(b"secret", now, body))
    assert not verify(b"secret", str(now), body + b" ", signature(b"secret", now, body))
    assert not verify(b"other", str(now), body, signature(b"secret", now, body))
    # A captured request replayed later fails on its age, though its signature is valid.
    old = now - 3600
    assert not verify(b"secret", str(old), body, signature(b"secret", old, body))


@pytest.mark.parametrize(("status", "event"), [
    ("DONE", Event.SERIES_DONE), ("FAILED", Event.SERIES_FAILED),
    ("QUARANTINED", Event.SERIES_QUARANTINED), ("HELD", Event.SERIES_HELD),
    ("IGNORED", Event.SERIES_IGNORED), ("PROCESSING", None), ("SENT", None)])
def test_statuses_map_to_events(status, event):
    assert series_event(status) == event


def test_malformed_json_is_named_without_repeating_the_secret(monkeypatch):
    monkeypatch.setenv("RELAY_WEBHOOKS", json.dumps([HOOK]))
    monkeypatch.setenv("RELAY_WEBHOOK_SECRETS", '{"lab": "hunter2-very-secret"')
    with pytest.raises(SettingsError, match=r"RELAY_WEBHOOK_SECRETS: .*not valid JSON") as err:
        load_settings()
    assert "hunter2" not in str(err.value)


def test_secrets_can_be_files_in_the_secrets_dir(monkeypatch, tmp_path):
    (tmp_path / "RELAY_WEBHOOK_SECRETS").write_text(json.dumps({"lab": "from-a-file"}))
    monkeypatch.setenv("RELAY_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("RELAY_WEBHOOKS", json.dumps([HOOK]))
    assert load_settings().webhook_secret_for("lab") == b"from-a-file"


def test_production_wants_https_receivers():
    plain = {"name": "lab", "url": "http://lab.example.org/hook"}
    with pytest.raises(SettingsError, match=r"webhooks \['lab'\] are not https://"):
        load_settings(env="production", deid_secret="a-production-secret-of-length",
                      webhooks=[plain], webhook_secret="s")
    assert load_settings(webhooks=[plain], webhook_secret="s").webhooks[0].name == "lab"
