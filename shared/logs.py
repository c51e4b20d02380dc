"""JSON log lines carrying ids and counts, never dataset values.

Callers pass context through ``extra=``; every key that is not one of the
record's own attributes lands in the JSON object.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from relay_shared.reasons import phi_log

# Set while a message is handled; asyncio.to_thread carries it into worker threads.
series_context: ContextVar[dict[str, object] | None] = ContextVar("series_context", default=None)

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(series_context.get() or {})
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception texts from parsers can quote file contents.
            entry["error_type"] = record.exc_info[0].__name__
        return json.dumps(entry, default=str)


# Libraries whose messages quote what they parsed: pydicom's "Invalid value for VR UI:
# '<the value>'", its unknown character sets, and every Python warning (pydicom warns
# rather than logs most of what it finds in a file).
QUOTING_LOGGERS = ("pydicom", "py.warnings")
_WARNING_ORIGIN = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+): (?P<category>\w+):")


class WithholdLibraryText(logging.Filter):
    """Reduce a quoting library's record to where it came from and what kind it is;
    its text goes to the PHI debug log only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(QUOTING_LOGGERS) or getattr(record, "withheld", False):
            return True
        text = record.getMessage()
        if phi_log.isEnabledFor(logging.DEBUG):
            phi_log.debug("%s: %s", record.name, text)
        origin = _WARNING_ORIGIN.match(text)
        record.msg, record.args = "library message withheld (it may quote file contents)", ()
        record.withheld = True
        record.source = (f"{origin['file'].rsplit('/', 1)[-1]}:{origin['line']}" if origin
                         else f"{record.module}:{record.lineno}")
        if origin:
            record.category = origin["category"]
        record.exc_info, record.exc_text = None, None
        return True


def configure(service: str, level: str = "INFO", phi_debug: bool = False) -> None:
    """JSON lines on stderr. `phi_debug` turns on the `relay.phi` logger, whose lines
    hold exception and library texts that may quote patient data: for a person
    allowed to see PHI, debugging on a protected machine, never by default."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(WithholdLibraryText())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "pynetdicom", "httpx", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    enable_phi_debug(phi_debug)


def enable_phi_debug(on: bool) -> None:
    # Set explicitly either way: RELAY_LOG_LEVEL=DEBUG alone must not turn it on.
    phi_log.setLevel(logging.DEBUG if on else logging.CRITICAL + 1)
