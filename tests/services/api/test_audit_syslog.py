"""The audit trail reaches the hospital's SIEM the IHE ATNA way: DICOM audit messages
(PS3.15 A.5) in RFC 5424 syslog over TLS (RFC 5425), received here by a real rsyslog
with a test CA; every message validates against the DICOM audit message schema. A
receiver that is away never holds a request up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from relay_api.main import create_app
from relay_shared import audit
from relay_shared.audit.atna import AuditSource
from relay_shared.audit.syslog import SyslogSender
from relay_shared.db import session_scope
from relay_shared.metrics import AUDIT_MESSAGES_DROPPED
from relay_shared.models import Series, Status
from relay_shared.runtime import Runtime
from tests.services.api.seed import TOKENS, Seeded, make_runtime, seed
from tests.support.certs import Pki
from tests.support.rsyslog import Rsyslog
from tests.support.services import free_port

SCHEMA_FILE = (Path(__file__).resolve().parents[3] / "shared" / "audit" / "data"
               / "audit-message.rnc")


def audit_schema() -> etree.RelaxNG:
    # rnc2rng does not place the schema's trailing documentation comments ("##"):
    # as plain comments they say the same and change nothing in the grammar.
    return etree.RelaxNG.from_rnc_string(SCHEMA_FILE.read_text().replace("##", "#"))


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    receiver = Rsyslog(tmp_path / "rsyslog", Pki(tmp_path / "pki")).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def relay(tmp_path: Path, rsyslog: Rsyslog) -> Iterator[tuple[Runtime, Seeded]]:
    runtime = make_runtime(tmp_path / "var", audit_syslog=f"tls://127.0.0.1:{rsyslog.port}",
                           audit_syslog_ca=rsyslog.pki.ca, audit_source_id="relay-test",
                           audit_enterprise_site="Test Hospital")
    yield runtime, seed(runtime.engine)
    sender = audit.uninstall()
    if sender is not None:
        sender.close()
    runtime.engine.dispose()


def as_(runtime: Runtime, role: str) -> TestClient:
    return TestClient(create_app(runtime), headers={"Authorization": f"Bearer {TOKENS[role]}"})


def event_ids(messages: list[etree._Element]) -> list[tuple[str, str, str]]:
    found = []
    for message in messages:
        ident = message.find("EventIdentification")
        assert ident is not None
        event_id = ident.find("EventID")
        assert event_id is not None
        found.append((event_id.get("csd-code") or "", ident.get("EventActionCode") or "",
                      ident.get("EventOutcomeIndicator") or ""))
    return found


@pytest.mark.rsyslog
def test_every_audited_act_reaches_rsyslog_over_tls_as_a_valid_dicom_audit_message(
        relay: tuple[Runtime, Seeded], rsyslog: Rsyslog) -> None:
    runtime, seeded = relay
    assert as_(runtime, "admin").get("/api/v1/admin/identifiers").status_code == 200
    assert as_(runtime, "reader").get("/api/v1/admin/events").status_code == 403
    bad = TestClient(create_app(runtime), headers={"Authorization": "Bearer not-a-token"})
    assert bad.get("/api/v1/series").status_code == 401
    assert as_(runtime, "operator").post(f"/api/v1/series/{seeded.failed}/retry"
                                         ).status_code == 202
    assert as_(runtime, "admin").get("/api/v1/admin/audit").status_code == 200
    with session_scope(runtime.engine) as session:
        series = session.get(Series, seeded.processing)
        assert series is not None
        series.status = Status.DONE
    received = rsyslog.wait_for(6)

    schema = audit_schema()
    messages = []
    for line in received:
        assert line["version"] == "1" and line["msgid"] == "IHE+RFC-3881"
        assert line["app"] == "relay-test" and line["pri"] in ("85", "84")
        xml = line["msg"].lstrip("\ufeff").encode()
        document = etree.fromstring(xml)
        assert schema.validate(document), (schema.error_log, xml)
        messages.append(document)
    assert set(event_ids(messages)) >= {
        ("110110", "R", "0"),  # Patient Record: the identifier mapping read
        ("110113", "E", "4"),  # Security Alert: a reader tried an admin's read
        ("110114", "E", "4"),  # User Authentication: an unknown token
        ("110103", "U", "0"),  # DICOM Instances Accessed: the retry
        ("110101", "R", "0"),  # Audit Log Used: the admin read the trail
        ("110106", "R", "0"),  # Export: a series DONE
    }
    retry = next(m for m in messages
                 if m.find("EventIdentification/EventID").get("csd-code") == "110103")
    requestor = retry.find("ActiveParticipant[@UserIsRequestor='true']")
    assert requestor is not None
    # The seeded operator token is of the older unnamed form: its label stands for it.
    assert str(requestor.get("UserID")).startswith("unnamed-operator-")
    assert requestor.get("NetworkAccessPointID") == "testclient"
    source = retry.find("AuditSourceIdentification")
    assert source is not None and source.get("AuditEnterpriseSiteID") == "Test Hospital"


def test_a_receiver_that_is_away_never_holds_a_request_up() -> None:
    closed_port = free_port()  # nothing listens there
    source = AuditSource("relay-test", "test:1", "localhost")
    sender = SyslogSender("127.0.0.1", closed_port, None, source, capacity=10).start()
    before = AUDIT_MESSAGES_DROPPED._value.get()
    entry = audit.AuditEntry(action=audit.Action.READ, actor="someone", actor_kind="token",
                             what="a read")
    started = time.monotonic()
    accepted = [sender.offer(entry) for _ in range(50)]
    elapsed = time.monotonic() - started
    sender.close(timeout=1)
    assert elapsed < 0.5, elapsed
    dropped = AUDIT_MESSAGES_DROPPED._value.get() - before
    assert accepted.count(False) == dropped >= 39
