"""The Mirth channel export forwards DICOM to the relay's SCP, and the
deployment files open the ports it uses."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

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
