"""Logging set-up: one line per event, the message plus its structured fields.

`extra={...}` fields are the structure; `json=True` emits one JSON object per line (what Azure
ingests), otherwise `message key=value ...` for a terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

# The id of the request (or run) being served; stamped on every log line written while it is set.
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def fields(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{key}={value}" for key, value in fields(record).items())
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        line = f"{line} {extras}" if extras else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def install_correlation() -> None:
    """Stamp `correlation_id` on every record created while one is set, whichever handler writes it
    (ours, pytest's, the Functions worker's). Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "caratflow_correlation", False):
        return

    def stamped(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        current = correlation_id.get()
        if current is not None:
            record.correlation_id = current
        return record

    stamped.caratflow_correlation = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(stamped)


def configure(level: int = logging.INFO, *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    install_correlation()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Loud at INFO: httpx logs every request; pgserver its handles; the durable SDK a deprecation note.
    for name in ("httpx", "pgserver", "azure.functions.DurableFunctions"):
        logging.getLogger(name).setLevel(logging.WARNING)
