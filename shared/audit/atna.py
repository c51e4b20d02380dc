"""An audit entry as a DICOM audit message (PS3.15 Annex A.5, the schema of A.5.1,
the events of A.5.3): pure, an entry in and XML out. Every coded value carries its
code, its coding scheme and its meaning, as the schema wants."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC

from relay_shared.audit.trail import Action, AuditEntry, AuditObject, Outcome

Code = tuple[str, str, str]  # code, coding scheme, meaning


def dcm(code: str, meaning: str) -> Code:
    return code, "DCM", meaning


APPLICATION_ACTIVITY = dcm("110100", "Application Activity")
AUDIT_LOG_USED = dcm("110101", "Audit Log Used")
INSTANCES_ACCESSED = dcm("110103", "DICOM Instances Accessed")
EXPORT = dcm("110106", "Export")
PATIENT_RECORD = dcm("110110", "Patient Record")
SECURITY_ALERT = dcm("110113", "Security Alert")
USER_AUTHENTICATION = dcm("110114", "User Authentication")

# Action: (event, action code, event type)
EVENTS: dict[Action, tuple[Code, str, Code | None]] = {
    Action.SIGN_IN: (USER_AUTHENTICATION, "E", dcm("110122", "Login")),
    Action.SIGN_OUT: (USER_AUTHENTICATION, "E", dcm("110123", "Logout")),
    Action.DENIED: (SECURITY_ALERT, "E", dcm("110132", "Use of Restricted Function")),
    Action.READ: (INSTANCES_ACCESSED, "R", None),
    Action.RETRY: (INSTANCES_ACCESSED, "U", None),
    Action.RELEASE: (INSTANCES_ACCESSED, "U", None),
    Action.DROP: (INSTANCES_ACCESSED, "D", None),
    Action.APPROVE: (INSTANCES_ACCESSED, "U", None),
    Action.REJECT: (INSTANCES_ACCESSED, "U", None),
    Action.CONFIGURATION: (SECURITY_ALERT, "E", dcm("110131", "Software Configuration")),
    Action.EXPORT: (EXPORT, "R", None),
    Action.START: (APPLICATION_ACTIVITY, "E", dcm("110120", "Application Start")),
}
# A read's event follows what was read: the audit trail itself, or the mapping from
# pseudonyms back to patients, or (anything else) the instances and their records.
READ_EVENTS = {"audit-log": AUDIT_LOG_USED, "patient-record": PATIENT_RECORD}
SOURCE_ROLE = dcm("110153", "Source Role ID")
DESTINATION_ROLE = dcm("110152", "Destination Role ID")
APPLICATION_SERVER = "4"  # Audit Source Type Code: application server process


@dataclass(frozen=True)
class AuditSource:
    source_id: str
    process: str
    host: str
    enterprise_site: str | None = None


def coded(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return ET.SubElement(parent, tag, {"csd-code": code[0], "codeSystemName": code[1],
                                       "displayName": code[2], "originalText": code[2]})


def event_of(entry: AuditEntry) -> tuple[Code, str, Code | None]:
    event, action, event_type = EVENTS[entry.action]
    if entry.action is Action.READ:
        for obj in entry.objects:
            event = READ_EVENTS.get(obj.kind, event)
    return event, action, event_type


def message(entry: AuditEntry, source: AuditSource) -> bytes:
    root = ET.Element("AuditMessage")
    event, action, event_type = event_of(entry)
    when = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)
    ident = ET.SubElement(root, "EventIdentification", {
        "EventActionCode": action,
        "EventDateTime": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "EventOutcomeIndicator": "0" if entry.outcome is Outcome.SUCCESS else "4"})
    coded(ident, "EventID", event)
    if event_type is not None:
        coded(ident, "EventTypeCode", event_type)
    ET.SubElement(ident, "EventOutcomeDescription").text = entry.what
    _participants(root, entry, source)
    audit_source = ET.SubElement(root, "AuditSourceIdentification",
                                 {"AuditSourceID": source.source_id})
    if source.enterprise_site:
        audit_source.set("AuditEnterpriseSiteID", source.enterprise_site)
    ET.SubElement(audit_source, "AuditSourceTypeCode", {"csd-code": APPLICATION_SERVER})
    for obj in entry.objects:
        if obj.kind != "destination":
            _participant_object(root, obj)
    # One line: syslog receivers escape a line break inside a message.
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="utf-8",
                                                                    xml_declaration=False)


def _participants(root: ET.Element, entry: AuditEntry, source: AuditSource) -> None:
    if entry.actor_kind != "system":
        person = ET.SubElement(root, "ActiveParticipant", {
            "UserID": entry.actor, "UserName": f"{entry.actor_kind} {entry.actor}",
            "UserIsRequestor": "true"})
        if entry.address:
            person.set("NetworkAccessPointID", entry.address)
            person.set("NetworkAccessPointTypeCode", "2")
    relay = ET.SubElement(root, "ActiveParticipant", {
        "UserID": source.source_id, "AlternativeUserID": source.process,
        "UserIsRequestor": "false" if entry.actor_kind != "system" else "true",
        "NetworkAccessPointID": source.host, "NetworkAccessPointTypeCode": "1"})
    if entry.action is Action.EXPORT:
        coded(relay, "RoleIDCode", SOURCE_ROLE)
    for obj in entry.objects:
        if obj.kind == "destination":
            destination = ET.SubElement(root, "ActiveParticipant", {
                "UserID": obj.id, "UserIsRequestor": "false"})
            coded(destination, "RoleIDCode", DESTINATION_ROLE)


# kind: (type code, type code role, ID type code)
OBJECT_KINDS: dict[str, tuple[str, str, Code]] = {
    "patient": ("1", "1", ("2", "RFC-3881", "Patient Number")),
    "study": ("2", "3", dcm("110180", "Study Instance UID")),
    "resource": ("2", "3", ("12", "RFC-3881", "URI")),
    "audit-log": ("2", "13", ("12", "RFC-3881", "URI")),
    "patient-record": ("2", "22", ("12", "RFC-3881", "URI")),
    "configuration": ("2", "5", ("12", "RFC-3881", "URI")),
}


def _participant_object(root: ET.Element, obj: AuditObject) -> None:
    type_code, role, id_type = OBJECT_KINDS[obj.kind]
    element = ET.SubElement(root, "ParticipantObjectIdentification", {
        "ParticipantObjectID": obj.id, "ParticipantObjectTypeCode": type_code,
        "ParticipantObjectTypeCodeRole": role})
    coded(element, "ParticipantObjectIDTypeCode", id_type)
    ET.SubElement(element, "ParticipantObjectName").text = obj.name or obj.id
    if obj.kind == "study":
        description = ET.SubElement(element, "ParticipantObjectDescription")
        ET.SubElement(description, "SOPClass",
                      {"NumberOfInstances": str(obj.instances or 0)})
        ET.SubElement(description, "Anonymized").text = "true"
