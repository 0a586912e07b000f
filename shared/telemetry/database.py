"""Database spans: psycopg's instrumentation on every pooled connection, inside traces only.

Apart from tracing.py so that importing the tracing helpers (as orchestrators do, through durable.py)
brings in no database driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor


class _InsideTracesOnly(trace.TracerProvider):
    """Tracers whose spans exist only under a recording span.

    A query outside any trace (the local host polling its queues, a lease renewal thread, a pool
    health check) would otherwise become a one-span trace of its own: noise in every backend. Under
    a span that is not recorded (sampled out, or nothing exports) the child would not be recorded
    either; skipping it saves a non-recording span on every query (tens of microseconds here).
    """

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        inner = trace.get_tracer(
            instrumenting_module_name, instrumenting_library_version, schema_url=schema_url, attributes=attributes
        )
        return _InsideTracesOnlyTracer(inner)


class _InsideTracesOnlyTracer(trace.Tracer):
    def __init__(self, inner: trace.Tracer) -> None:
        self.inner = inner  # a proxy until configure() sets the real provider, then that provider's

    def start_span(self, name: str, context: Context | None = None, *args: Any, **kwargs: Any) -> trace.Span:
        if not trace.get_current_span(context).is_recording():
            return trace.INVALID_SPAN
        return self.inner.start_span(name, context, *args, **kwargs)

    # The same call as the Tracer's (its arguments passed on), through another context manager class.
    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        if not trace.get_current_span(context).is_recording():
            yield trace.INVALID_SPAN
            return
        with self.inner.start_as_current_span(name, context, *args, **kwargs) as span:
            yield span


_INSIDE_TRACES_ONLY = _InsideTracesOnly()
# Either kind: the instrumentation wraps a pool's sync and async connections alike.
_Connection = TypeVar("_Connection", psycopg.Connection[Any], psycopg.AsyncConnection[Any])


def trace_connection(connection: _Connection) -> None:
    """Give a connection's queries spans, as children of the (recording) span current when they run.

    Made to be a psycopg_pool `configure` callback (shared/db/connect.py); an AsyncConnectionPool
    wants an async callback that calls this.
    """
    PsycopgInstrumentor.instrument_connection(connection, tracer_provider=_INSIDE_TRACES_ONLY)
