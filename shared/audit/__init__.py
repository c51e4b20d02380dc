"""The security audit trail: each entry kept in the database (readable by admins in the
API) and, when RELAY_AUDIT_SYSLOG is set, sent as a DICOM audit message (PS3.15 A.5)
over syslog to the hospital's SIEM or audit record repository (IHE ATNA)."""

from relay_shared.audit.trail import (
    Action,
    AuditEntry,
    AuditObject,
    Outcome,
    install,
    record,
    uninstall,
    write,
)

__all__ = ["Action", "AuditEntry", "AuditObject", "Outcome", "install", "record", "uninstall",
           "write"]
