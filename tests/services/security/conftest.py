"""A certification authority and the certificates the TLS tests hand out, made once per module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.certs import Leaf, Pki, self_signed


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server: Leaf              # the relay's SCP, or a peer: localhost and 127.0.0.1
    client: Leaf              # CN and DNS name STORESCU, for client authentication
    relay_client: Leaf        # the relay's own client certificate, CN RELAY
    self_signed: Leaf         # CN STORESCU, signed by itself
    rogue_client: Leaf        # CN STORESCU, signed by a CA nobody here trusts
    self_signed_server: Leaf
    rogue_server: Leaf
    misnamed_server: Leaf     # from the right CA, for another host


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("pki")
    pki = Pki(folder / "ca")
    rogue = pki.rogue()
    return Certificates(
        ca=pki.ca,
        server=pki.issue("server", "relay.test"),
        client=pki.issue("client", "STORESCU", ("STORESCU",), client=True),
        relay_client=pki.issue("relay-client", "RELAY", ("RELAY",), client=True),
        self_signed=self_signed(folder / "own", "client", "STORESCU", ("STORESCU",)),
        rogue_client=rogue.issue("client", "STORESCU", ("STORESCU",), client=True),
        self_signed_server=self_signed(folder / "own", "server", "peer.test"),
        rogue_server=rogue.issue("server", "peer.test"),
        misnamed_server=pki.issue("misnamed", "elsewhere.test", ("elsewhere.test",)),
    )
