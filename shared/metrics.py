"""Prometheus metrics shared by every service (each process exposes its own).

`relay up` with deid worker processes counts in Prometheus' multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set before this module is first imported): every
process writes its values to files there and one scrape of `relay up` adds them up.
Each gauge says how its processes' values combine; outside that mode it is ignored.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

INSTANCES_RECEIVED = Counter("relay_instances_received_total", "Instances recorded by ingest")
INSTANCES_DEIDENTIFIED = Counter("relay_instances_deidentified_total",
                                 "Instances de-identified")
INSTANCES_SENT = Counter("relay_instances_sent_total", "Instances confirmed at a destination",
                         ["destination"])
INSTANCES_FAILED = Counter("relay_instances_failed_total", "Instances that failed",
                           ["stage", "reason"])
SERIES_FINISHED = Counter("relay_series_finished_total", "Series that reached a final status",
                          ["status", "project"])
STAGE_SECONDS = Histogram("relay_stage_seconds", "Time one series spends in a stage",
                          ["stage"], buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900))
IN_FLIGHT = Gauge("relay_series_in_flight", "Series being worked on by this process", ["stage"],
                  multiprocess_mode="livesum")
QUEUE_DEPTH = Gauge("relay_queue_depth", "Messages waiting in a queue", ["queue"],
                    multiprocess_mode="mostrecent")
# Set by the api from the database at each scrape: the whole deployment's view, not a process's.
SERIES_BY_STATUS = Gauge("relay_series", "Series in the database by status", ["status"],
                         multiprocess_mode="mostrecent")
IMAGES_BY_STATUS = Gauge("relay_images", "Images in the database by status", ["status"],
                         multiprocess_mode="mostrecent")
SERIES_AWAITING_REVIEW = Gauge("relay_series_awaiting_review",
                               "Series de-identified and waiting for a reviewer's decision",
                               ["project"], multiprocess_mode="mostrecent")
REVIEW_OLDEST_SECONDS = Gauge("relay_review_oldest_waiting_seconds",
                              "How long the series waiting longest for review has waited",
                              multiprocess_mode="mostrecent")


def reason_label(reason: str) -> str:
    """A bounded label for a failure reason: its fixed part before any colon, as a slug.
    The variable part after the colon (a parser's message) would make a series per file."""
    head = reason.split(":", 1)[0].strip().lower()
    slug = "".join(c if c.isalnum() else "_" for c in head).strip("_")
    return "_".join(filter(None, slug.split("_")))[:48] or "unknown"


def count_failed(stage: str, reasons: list[str]) -> None:
    for reason in reasons:
        INSTANCES_FAILED.labels(stage=stage, reason=reason_label(reason)).inc()


# Operations: what the alert rules and the Grafana dashboard in deploy/monitoring/ watch.
DEFAULT_PROJECT = "default"
SERIES_DONE_SECONDS = Histogram(
    "relay_series_done_seconds", "Time from a series' receipt to DONE", ["project"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400))
DESTINATION_ERRORS = Counter("relay_destination_errors_total",
                             "Delivery attempts a destination refused or did not confirm",
                             ["destination"])
DEPENDENCY_UP = Gauge("relay_dependency_up",
                      "Whether this process reaches a dependency (1) or not (0)", ["dependency"],
                      multiprocess_mode="livemin")
CERTIFICATE_NOT_AFTER = Gauge(
    "relay_certificate_not_after_timestamp_seconds",
    "When the earliest-expiring certificate in a configured TLS file expires (Unix time)",
    ["certificate"], multiprocess_mode="min")


def project_label(series: object) -> str:
    """The project a series' metrics are counted under: the one that took it, or the
    implicit project when no projects file routed it."""
    return getattr(series, "project", None) or DEFAULT_PROJECT


WEBHOOK_DELIVERIES = Counter("relay_webhook_deliveries_total",
                             "Webhook delivery attempts by outcome (delivered, failed, gave_up)",
                             ["hook", "outcome"])
PROJECTS_RELOADS = Counter("relay_projects_reloads_total",
                           "Rereads of the projects file, by result (applied, refused)",
                           ["result"])
SERIES_ROUTED = Counter("relay_series_routed_total", "Series routed by ingest, by project "
                        "and action (no project: project \"\")", ["project", "action"])
# The audit trail's messages to the syslog receiver (RELAY_AUDIT_SYSLOG): sent, and
# dropped because the bounded queue was full while the receiver was away or slow.
AUDIT_MESSAGES_SENT = Counter("relay_audit_messages_sent_total",
                              "DICOM audit messages written to the syslog receiver")
AUDIT_MESSAGES_DROPPED = Counter("relay_audit_messages_dropped_total",
                                 "DICOM audit messages dropped: the send queue was full")


def exposition() -> bytes:
    """This process's metrics, or in multiprocess mode every live process's added up."""
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(registry))
    return bytes(generate_latest())


def process_gone(pid: int) -> None:
    """A worker process ended: its live gauges no longer count (its counters do)."""
    if os.environ.get(MULTIPROCESS_DIR):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
