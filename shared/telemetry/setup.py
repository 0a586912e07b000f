"""Tracing and metric providers: configured once per process, the exporter chosen by the environment.

The standard variables decide, first match wins:
  APPLICATIONINSIGHTS_CONNECTION_STRING  -> azure-monitor-opentelemetry (`configure_azure_monitor`)
  OTEL_EXPORTER_OTLP_ENDPOINT            -> OTLP over HTTP/protobuf (the exporters read the OTEL_* details)
  OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER = console -> stderr, per signal
  otherwise                              -> no export
OTEL_SDK_DISABLED=true leaves OpenTelemetry unconfigured (every span and instrument a no-op).

Whatever the choice, the process also gets a Prometheus reader (`prometheus_text`, for /api/metrics),
an in-memory metric reader and a span tap (`capture_spans`, `read_metrics`: what tests read).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricReader,
    NumberDataPoint,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared import logs

log = logging.getLogger(__name__)

TRACER_NAME = "caratflow"


def exporter_choice(env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """Which exporter the environment asks for: azure-monitor, otlp, console or none (disabled: no SDK)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "disabled"
    if env.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return "azure-monitor"
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "otlp"
    if "console" in (env.get("OTEL_TRACES_EXPORTER", ""), env.get("OTEL_METRICS_EXPORTER", "")):
        return "console"
    return "none"


# --- deterministic span ids (an orchestrator's span is recorded with ids derived from its input)

_forced: ContextVar[tuple[int | None, int] | None] = ContextVar("caratflow_forced_span_ids", default=None)


class ForcibleIds(IdGenerator):
    """Random ids, except inside `forced_ids(...)`: a span recorded there gets the ids given."""

    def __init__(self, inner: IdGenerator) -> None:
        self.inner = inner

    def generate_span_id(self) -> int:
        forced = _forced.get()
        return forced[1] if forced else self.inner.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _forced.get()
        return forced[0] if forced and forced[0] else self.inner.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return self.inner.is_trace_id_random()


@contextmanager
def forced_ids(trace_id: int | None, span_id: int) -> Iterator[None]:
    """Spans started in this block get `span_id` (and `trace_id`, for a span without a parent)."""
    token = _forced.set((trace_id, span_id))
    try:
        yield
    finally:
        _forced.reset(token)


# --- the hooks tests read


class SpanTap(SpanProcessor):
    """Hands each finished span to the in-memory exporters attached by `capture_spans`."""

    def __init__(self) -> None:
        self._exporters: tuple[InMemorySpanExporter, ...] = ()  # replaced whole: readers need no lock
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        return bool(self._exporters)

    def attach(self, exporter: InMemorySpanExporter) -> None:
        with self._lock:
            self._exporters = (*self._exporters, exporter)

    def detach(self, exporter: InMemorySpanExporter) -> None:
        with self._lock:
            self._exporters = tuple(e for e in self._exporters if e is not exporter)

    def on_end(self, span: ReadableSpan) -> None:
        for exporter in self._exporters:
            exporter.export((span,))


class WhenListened(Sampler):
    """Without an exporter, record spans only while a test captures them: otherwise nobody reads them,
    and a non-recording span costs next to nothing (its ids still propagate)."""

    def __init__(self, tap: SpanTap, delegate: Sampler) -> None:
        self.tap = tap
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Any = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if not self.tap.listening:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"WhenListened({self.delegate.get_description()})"


@dataclass(frozen=True)
class Telemetry:
    """What `configure` set up in this process."""

    exporter: str
    tap: SpanTap
    memory: InMemoryMetricReader
    registry: CollectorRegistry
    tracer: trace.Tracer


_lock = threading.Lock()
_current: Telemetry | None = None


def configure() -> Telemetry:
    """Set up tracing and metrics for this process; later calls return what the first one set up."""
    global _current
    if _current is not None:
        return _current
    with _lock:
        if _current is None:
            _current = _configure(exporter_choice())
            log.info("telemetry configured", extra={"exporter": _current.exporter})
        return _current


def _configure(exporter: str) -> Telemetry:
    logs.install_correlation()
    if logs.in_functions_worker():
        logs.format_worker_logs_as_json()
    tap, memory, registry = SpanTap(), InMemoryMetricReader(), CollectorRegistry()
    # No otel_scope_* labels on every series: the metric names already say whose they are.
    readers: list[MetricReader] = [memory, PrometheusMetricReader(scope_info_enabled=False, registry=registry)]
    if exporter == "azure-monitor":
        _azure_monitor(tap, readers)
    elif exporter != "disabled":
        _sdk_providers(exporter, tap, readers)
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider) and not isinstance(provider.id_generator, ForcibleIds):
        # Set after construction because configure_azure_monitor builds its provider itself. Only
        # record_span (shared/telemetry/tracing.py) ever forces an id; every other span stays random.
        # The SDK annotates the attribute with its default generator's class; any IdGenerator serves.
        provider.id_generator = ForcibleIds(provider.id_generator)  # type: ignore[assignment]
    return Telemetry(exporter, tap, memory, registry, trace.get_tracer(TRACER_NAME))


def _azure_monitor(tap: SpanTap, readers: list[MetricReader]) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(
        span_processors=[tap],
        metric_readers=readers,
        # In Functions the worker already forwards every log record to the host, which sends it to
        # Application Insights; exporting them from here too would store every line twice.
        disable_logging=logs.in_functions_worker(),
    )


def _sdk_providers(exporter: str, tap: SpanTap, readers: list[MetricReader]) -> None:
    resource = Resource.create({} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "caratflow"})
    # sampler=None when exporting: the SDK's default, which honours OTEL_TRACES_SAMPLER.
    sampler = WhenListened(tap, ParentBased(ALWAYS_ON)) if exporter == "none" else None
    provider = TracerProvider(resource=resource, sampler=sampler, id_generator=ForcibleIds(RandomIdGenerator()))
    provider.add_span_processor(tap)
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if exporter == "console":
        # stderr: stdout carries the CLI's own output.
        if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        if os.environ.get("OTEL_METRICS_EXPORTER") == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stderr)))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    if trace.get_tracer_provider() is not provider:
        # Someone configured OpenTelemetry before us (set_tracer_provider refuses a second one):
        # keep theirs, and still let tests see our spans when it is an SDK provider.
        log.warning("a tracer provider was already set; keeping it")
        existing = trace.get_tracer_provider()
        if isinstance(existing, TracerProvider):
            existing.add_span_processor(tap)


# --- what tests and the API read


@contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Collect every span that ends in this block (`.get_finished_spans()`)."""
    tap = configure().tap
    exporter = InMemorySpanExporter()
    tap.attach(exporter)
    try:
        yield exporter
    finally:
        tap.detach(exporter)


def read_metrics() -> dict[str, dict[frozenset[tuple[str, Any]], float]]:
    """Every metric point now, by metric name and attributes: counters' and gauges' values,
    histograms' counts. Counters are cumulative for the process: compare two readings."""
    found: dict[str, dict[frozenset[tuple[str, Any]], float]] = {}
    data = configure().memory.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    key = frozenset((point.attributes or {}).items())
                    if isinstance(point, HistogramDataPoint):  # a Histogram's
                        points[key] = point.count
                    elif isinstance(point, NumberDataPoint):  # a Sum's or a Gauge's
                        points[key] = point.value
    return found


def prometheus_text() -> tuple[bytes, str]:
    """This process's metrics in the Prometheus text format: (body, content type) for /api/metrics."""
    return generate_latest(configure().registry), CONTENT_TYPE_LATEST
