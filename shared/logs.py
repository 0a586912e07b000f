"""Logging set-up: one line per event, the message plus its structured fields.

`extra={...}` fields are the structure; `json=True` emits one JSON object per line (what Azure
ingests), otherwise `message key=value ...` for a terminal.

Every record also carries the context it was written in: `correlation_id` (the request, timer
firing or CLI command that caused the work), `run_id` (the sync run being worked on) and, while a
span is current, `trace_id`/`span_id`. Triggers, activities and orchestrators set the first two with
`correlated(...)` (shared/telemetry/durable.py); the log call sites never pass them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

from opentelemetry import trace

# The id of the request (or run) being served; stamped on every log line written while it is set.
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# The sync run being worked on; stamped like correlation_id.
run_id: ContextVar[str | None] = ContextVar("run_id", default=None)

# The same variables under names that keyword arguments called correlation_id/run_id do not shadow.
_CORRELATION_ID, _RUN_ID = correlation_id, run_id

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_CONTEXT = "log_context"


def new_correlation_id() -> str:
    """A fresh id, in the form the API makes for requests that bring none."""
    return uuid.uuid4().hex


@contextmanager
def correlated(*, correlation_id: str | None = None, run_id: str | None = None) -> Iterator[None]:
    """Stamp these fields on every record written in this block (None leaves a field as it is)."""
    tokens = []
    for var, value in ((_CORRELATION_ID, correlation_id), (_RUN_ID, run_id)):
        if value is not None:
            tokens.append((var, var.set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def context_fields() -> dict[str, str]:
    """The context a record made now carries."""
    found = {}
    if (current := correlation_id.get()) is not None:
        found["correlation_id"] = current
    if (current := run_id.get()) is not None:
        found["run_id"] = current
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        found["trace_id"] = format(span.trace_id, "032x")
        found["span_id"] = format(span.span_id, "016x")
    return found


class ContextRecord(logging.LogRecord):
    """A record whose context fields are read from a snapshot instead of stored as attributes.

    Why: `Logger.makeRecord` refuses an `extra` key already on the record, and call sites do pass
    some of these keys themselves (shared/sync logs `run_id`). Read through `__getattr__`, the
    context is a fallback: `record.run_id` works, and a call's own `extra` wins without a clash.
    """

    def __getattr__(self, name: str) -> object:
        context = self.__dict__.get(_CONTEXT) or {}
        if name in context:
            return context[name]
        raise AttributeError(name)


def fields(record: logging.LogRecord) -> dict[str, object]:
    extras = {key: value for key, value in record.__dict__.items() if key not in _STANDARD and key != _CONTEXT}
    return {**(record.__dict__.get(_CONTEXT) or {}), **extras}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,  # which server worker or host process wrote it
            **fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Ids for machines (JSON lines, trace backends); a terminal reader is better off without them.
_TRACE_IDS = ("trace_id", "span_id")


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{key}={value}" for key, value in fields(record).items() if key not in _TRACE_IDS)
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        line = f"{line} {extras}" if extras else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def install_correlation() -> None:
    """Stamp the context fields on every record created while one is set, whichever handler writes it
    (ours, pytest's, the Functions worker's). Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "caratflow_correlation", False):
        return

    def stamped(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        context = context_fields()
        if not context:
            return record
        if type(record) is logging.LogRecord:
            record.__class__ = ContextRecord
            record.__dict__[_CONTEXT] = context
        else:
            # Another library's record type: plain attributes (a call passing the same key in
            # `extra` would then clash, as it always has).
            record.__dict__.update(context)
        return record

    stamped.caratflow_correlation = True  # type: ignore[attr-defined]  # a marker on the function object
    logging.setLogRecordFactory(stamped)


class _CurrentStderr(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a record is emitted, not when logging was configured: a
    caller that swaps sys.stderr (pytest's capture, per test) must not leave a handler on a closed file
    for the threads that log later."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass  # always sys.stderr, see above


def configure(level: int = logging.INFO, *, json_lines: bool = False) -> None:
    handler = _CurrentStderr()
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    install_correlation()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Loud at INFO: httpx logs every request; pgserver its handles; the durable SDK a deprecation note.
    for name in ("httpx", "pgserver", "azure.functions.DurableFunctions"):
        logging.getLogger(name).setLevel(logging.WARNING)


def in_functions_worker() -> bool:
    """True inside the Azure Functions Python worker (the host sets this for every worker it starts)."""
    return "FUNCTIONS_WORKER_RUNTIME" in os.environ


def format_worker_logs_as_json() -> None:
    """In the Functions worker: make its handlers write our JSON lines.

    The worker forwards each record to the host as `handler.format(record)`, so the formatter decides
    what reaches Application Insights; JSON keeps the fields (correlation_id, run_id, ...) queryable.
    """
    install_correlation()
    for handler in logging.getLogger().handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
