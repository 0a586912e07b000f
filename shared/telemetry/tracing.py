"""Spans: W3C trace context in and out of orchestration inputs, trigger spans, recorded spans, database spans."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared import logs
from shared.telemetry.setup import configure, forced_ids

_W3C = TraceContextTextMapPropagator()


def tracer() -> trace.Tracer:
    return configure().tracer


def traceparent(span: SpanContext) -> str:
    """The W3C `traceparent` header value of a span."""
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-{int(span.trace_flags):02x}"


def parse_traceparent(value: object) -> SpanContext | None:
    """The span a `traceparent` names, or None when absent or malformed."""
    if not isinstance(value, str):
        return None
    span = trace.get_current_span(_W3C.extract({"traceparent": value})).get_span_context()
    return span if span.is_valid else None


def parent_context(value: object) -> Context | None:
    """A context whose current span is the one `value` (a traceparent) names; None if it names none."""
    span = parse_traceparent(value)
    return None if span is None else trace.set_span_in_context(NonRecordingSpan(span))


def derived_id(seed: str, *, bits: int) -> int:
    """A non-zero id of `bits` bits that depends only on `seed` (the same in every replay)."""
    value = int.from_bytes(hashlib.sha256(seed.encode()).digest()[: bits // 8], "big")
    return value or 1


def carrier() -> dict[str, str]:
    """What a trigger puts into an orchestration's input: the caller's correlation id (a new one if
    none is set) and, inside a span, its traceparent."""
    fields = {"correlation_id": logs.correlation_id.get() or logs.new_correlation_id()}
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["traceparent"] = traceparent(span)
    return fields


@contextmanager
def trigger_span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """The span of a trigger (timer, HTTP route, CLI) that starts durable work: the root the rest nests in."""
    with tracer().start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=_clean(attributes)) as span:
        yield span


def record_span(
    name: str,
    span: SpanContext,
    *,
    parent: SpanContext | None,
    start: datetime,
    end: datetime,
    attributes: dict[str, Any],
    error: BaseException | None = None,
) -> None:
    """Record a span that already happened, with the ids given (see shared/telemetry/__init__.py, orchestrators)."""
    context = Context() if parent is None else trace.set_span_in_context(NonRecordingSpan(parent))
    with forced_ids(None if parent is not None else span.trace_id, span.span_id):
        recorded = tracer().start_span(
            name, context=context, kind=SpanKind.INTERNAL, attributes=_clean(attributes), start_time=_ns(start)
        )
    if error is not None:
        recorded.record_exception(error, timestamp=_ns(end))
        recorded.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:300]))
    recorded.end(end_time=_ns(end))


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """Span attributes take str/bool/int/float only: drop None, stringify the rest."""
    return {
        key: value if isinstance(value, str | bool | int | float) else str(value)
        for key, value in attributes.items()
        if value is not None
    }


# --- database spans
