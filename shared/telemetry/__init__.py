"""OpenTelemetry traces and metrics for caratflow, and how they cross the durable replay boundary.

Design
------
One run is one trace, nested trigger -> orchestrator -> (sub-orchestrators ->) activities -> database:

- The trigger (timer, HTTP route, CLI) opens a span (`trigger_span`) and puts its W3C `traceparent`
  and the correlation id into the orchestration input (`carrier`, via shared/runs/starts.py).
- An orchestrator is replayed from its history many times, so it must not hold a live span (each
  replay would open another) nor log on replay. Its span context is instead DERIVED: the trace id
  from the input's traceparent, the span id a hash of its instance id and input, the same in every
  replay. `carry` hands that context to every activity and sub-orchestration it calls;
  `@observed_orchestrator` records the span once, when the orchestrator finishes outside a replay,
  with the start and end times of the history (`current_utc_datetime`), and `replay_safe` loggers
  write nothing while `is_replaying`. A span id is forced through `ForcibleIds`, the provider's id
  generator; nothing else is ever forced.
- An activity runs live, exactly like any function: `@observed_activity` starts a span that is a
  child of the traceparent in its input and sets the log context (correlation_id, run_id).
- Database spans come from opentelemetry-instrumentation-psycopg on every pooled connection
  (`trace_connection`), children of the activity span; queries outside any trace get no span.
The orchestrator's span is written when it ends, so while a run is going its activities' parent is
not exported yet; backends show it once the run finishes.

In Azure, the Durable Functions extension can trace too (host.json durableTask.tracing, distributed
tracing V2): the host then emits its own "orchestration:<name>" / "activity:<name>" spans from the
.NET side, parented to the traceparent the SDK's client sends with start_new, which is our trigger
span. Those and ours are siblings under the trigger in one trace: the host's show scheduling and
queueing, ours carry the domain (run_id, feed, partition_no) and the database spans. Our
orchestrator and activity spans ignore the invocation context the worker receives from the host
because an orchestrator cannot read it deterministically; turn the host's off if the doubled tree
is noise.

Metrics (shared/telemetry/metrics.py, queues.py): stones fetched, partitions by status, dead letters
opened and open, the consolidation backlog, and the API's request latency and rate-limit refusals.
`prometheus_text()` renders them for an /api/metrics route.

Exporters are chosen by the standard environment variables (setup.py): Application Insights, OTLP,
console, or none. Everything is configured on first use, once per process; `configure()` may also be
called at start-up.
"""

from shared.telemetry.database import trace_connection
from shared.telemetry.durable import (
    carry,
    observed_activity,
    observed_orchestrator,
    orchestration_trace,
    replay_safe,
)
from shared.telemetry.metrics import (
    record_dead_letter,
    record_partition,
    record_rate_limited,
    record_request,
    record_stones_fetched,
)
from shared.telemetry.queues import watch_queues
from shared.telemetry.setup import capture_spans, configure, exporter_choice, prometheus_text, read_metrics
from shared.telemetry.tracing import carrier, trigger_span

__all__ = [
    "capture_spans",
    "carrier",
    "carry",
    "configure",
    "exporter_choice",
    "observed_activity",
    "observed_orchestrator",
    "orchestration_trace",
    "prometheus_text",
    "read_metrics",
    "record_dead_letter",
    "record_partition",
    "record_rate_limited",
    "record_request",
    "record_stones_fetched",
    "replay_safe",
    "trace_connection",
    "trigger_span",
    "watch_queues",
]
