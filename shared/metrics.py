"""Prometheus metrics shared by every service (each process exposes its own)."""

from prometheus_client import Counter, Gauge, Histogram

INSTANCES_RECEIVED = Counter("relay_instances_received_total", "Instances recorded by ingest")
INSTANCES_DEIDENTIFIED = Counter("relay_instances_deidentified_total",
                                 "Instances de-identified")
INSTANCES_SENT = Counter("relay_instances_sent_total", "Instances confirmed at a destination",
                         ["destination"])
INSTANCES_FAILED = Counter("relay_instances_failed_total", "Instances that failed",
                           ["stage", "reason"])
SERIES_FINISHED = Counter("relay_series_finished_total", "Series that reached a final status",
                          ["status"])
STAGE_SECONDS = Histogram("relay_stage_seconds", "Time one series spends in a stage",
                          ["stage"], buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900))
IN_FLIGHT = Gauge("relay_series_in_flight", "Series being worked on by this process", ["stage"])
QUEUE_DEPTH = Gauge("relay_queue_depth", "Messages waiting in a queue", ["queue"])
# Set by the api from the database at each scrape: the whole deployment's view, not a process's.
SERIES_BY_STATUS = Gauge("relay_series", "Series in the database by status", ["status"])
IMAGES_BY_STATUS = Gauge("relay_images", "Images in the database by status", ["status"])


def reason_label(reason: str) -> str:
    """A bounded label for a failure reason: its fixed part before any colon, as a slug.
    The variable part after the colon (a parser's message) would make a series per file."""
    head = reason.split(":", 1)[0].strip().lower()
    slug = "".join(c if c.isalnum() else "_" for c in head).strip("_")
    return "_".join(filter(None, slug.split("_")))[:48] or "unknown"


def count_failed(stage: str, reasons: list[str]) -> None:
    for reason in reasons:
        INSTANCES_FAILED.labels(stage=stage, reason=reason_label(reason)).inc()
PROJECTS_RELOADS = Counter("relay_projects_reloads_total",
                           "Rereads of the projects file, by result (applied, refused)",
                           ["result"])
SERIES_ROUTED = Counter("relay_series_routed_total", "Series routed by ingest, by project "
                        "and action (no project: project \"\")", ["project", "action"])
