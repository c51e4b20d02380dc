"""The Mirth channel export forwards DICOM to the relay's SCP, and the
deployment files open the ports it uses."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import ClassVar

import pytest

from .conftest import ROOT

CHANNEL = ROOT / "deploy" / "mirth" / "relay-dicom-forward.xml"


@pytest.fixture(scope="module")
def channel() -> ET.Element:
    return ET.parse(CHANNEL).getroot()


def test_channel_is_a_mirth_export(channel):
    assert channel.tag == "channel"
    uuid.UUID(channel.findtext("id"))
    assert channel.findtext("properties/initialState") == "STARTED"


def test_source_is_a_dicom_listener(channel):
    source = channel.find("sourceConnector")
    assert source.findtext("transportName") == "DICOM Listener"
    props = source.find("properties")
    assert props.get("class") == "com.mirth.connect.connectors.dimse.DICOMReceiverProperties"
    assert props.findtext("listenerConnectorProperties/port") == "11104"
    assert props.findtext("applicationEntity") == "MIRTH"


def test_destination_is_the_relay_scp(channel):
    destinations = channel.findall("destinationConnectors/connector")
    assert len(destinations) == 1
    dest = destinations[0]
    assert dest.findtext("transportName") == "DICOM Sender"
    props = dest.find("properties")
    assert props.get("class") == "com.mirth.connect.connectors.dimse.DICOMDispatcherProperties"
    assert props.findtext("host") == "relay-ingest"
    assert props.findtext("port") == "11112"
    assert props.findtext("applicationEntity") == "RELAY"
    assert props.findtext("template") == "${DICOMMESSAGE}"


def test_mirth_keeps_no_copy_of_the_images(channel):
    props = channel.find("properties")
    assert props.findtext("removeContentOnCompletion") == "true"
    assert props.findtext("removeAttachmentsOnCompletion") == "true"


def test_relay_ingest_answers_to_that_name_everywhere(compose, rendered):
    aliases = compose["services"]["ingest"]["networks"]["default"]["aliases"]
    assert "relay-ingest" in aliases
    for objects in rendered.values():
        services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
        assert services["relay-ingest"]["spec"]["ports"][0]["port"] == 11112
        assert services["mirth-dicom"]["spec"]["ports"][0]["port"] == 11104


class _MirthStandIn(http.server.BaseHTTPRequestHandler):
    """Mirth's REST API as the import script uses it: answers, and keeps what is posted.
    Mirth itself is a Java server with no package here; the channel's content is what
    these tests check."""

    posted: ClassVar[list[tuple[str, bytes]]] = []

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"4.5.2")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posted.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def mirth_api() -> Iterator[str]:
    _MirthStandIn.posted = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MirthStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _import(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ROOT / "deploy" / "mirth" / "import-channel.sh")],
                          env={"PATH": os.environ["PATH"], "MIRTH_URL": url,
                               "MIRTH_PASSWORD": "admin", **env},
                          capture_output=True, text=True, timeout=60)


def _tls_of(connector: ET.Element) -> tuple[str | None, ...]:
    props = connector.find("properties")
    assert props is not None
    return tuple(props.findtext(n) for n in ("tls", "trustStore", "trustStorePW"))


def test_the_channel_goes_in_as_exported_by_default(mirth_api: str) -> None:
    result = _import(mirth_api)
    assert result.returncode == 0, result.stderr
    (path, body), _deploy = _MirthStandIn.posted
    assert path == "/api/channels?override=true" and body == CHANNEL.read_bytes()


def test_for_a_tls_only_scp_the_sender_to_the_relay_speaks_the_aes_profile(
        mirth_api: str) -> None:
    store, password = "file:///opt/connect/appdata/relay-ca.p12", r"s3cr|et\with;"
    result = _import(mirth_api, MIRTH_RELAY_TLS="aes", MIRTH_RELAY_TRUSTSTORE=store,
                     MIRTH_RELAY_TRUSTSTORE_PASSWORD=password)
    assert result.returncode == 0, result.stderr
    channel = ET.fromstring(_MirthStandIn.posted[0][1])
    (sender,) = channel.findall("destinationConnectors/connector")
    source = channel.find("sourceConnector")
    assert source is not None
    assert _tls_of(sender) == ("aes", store, password)
    assert _tls_of(source) == ("notls", "", "")  # what the modalities send is unchanged


@pytest.mark.parametrize(("env", "message"), [
    ({"MIRTH_RELAY_TLS": "aes"}, "needs MIRTH_RELAY_TRUSTSTORE"),
    ({"MIRTH_RELAY_TLS": "aes", "MIRTH_RELAY_TRUSTSTORE": "file:///x.p12",
      "MIRTH_RELAY_TRUSTSTORE_PASSWORD": "a<b"}, "must not hold"),
    ({"MIRTH_RELAY_TLS": "3des"}, "must be notls or aes"),
])
def test_a_tls_setting_the_script_cannot_use_imports_nothing(
        mirth_api: str, env: dict[str, str], message: str) -> None:
    result = _import(mirth_api, **env)
    assert result.returncode != 0 and message in result.stderr
    assert _MirthStandIn.posted == []
