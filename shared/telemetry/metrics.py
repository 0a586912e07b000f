"""The instruments, created once at import, and the helpers that record them.

Created through the global meter: until `configure()` installs the real provider they are proxies,
and they bind to it as soon as it is installed. Attribute keys are the names used everywhere else
(`feed`, `status`) or OpenTelemetry's semantic conventions for HTTP.

Counters and histograms are per process, as every OpenTelemetry reading is: Application Insights
adds the processes up; a Prometheus scrape of /api/metrics sees the process that answered it.
"""

from __future__ import annotations

from opentelemetry import metrics

from shared.telemetry.setup import configure

meter = metrics.get_meter("caratflow")

stones_fetched = meter.create_counter(
    "caratflow.stones.fetched",
    unit="{stone}",
    description="Valid stones received from a feed; its rate is stones per second.",
)
partitions = meter.create_counter(
    "caratflow.partitions",
    unit="{partition}",
    description="Partitions finished, by status: fetched, or dead_lettered once their last attempt failed.",
)
dead_letters_opened = meter.create_counter(
    "caratflow.dead_letters.opened",
    unit="{dead_letter}",
    description="Dead letters opened (or opened again by a failed replay).",
)
request_duration = meter.create_histogram(
    "caratflow.api.request.duration",
    unit="s",
    description="API request latency, by route template, method and status.",
    # OpenTelemetry's advised boundaries for HTTP durations: percentiles from 5 ms to 10 s.
    explicit_bucket_boundaries_advisory=[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10],
)
rate_limited = meter.create_counter(
    "caratflow.api.rate_limited",
    unit="{request}",
    description="Requests refused with 429, by budget (search, mutation, auth) and route template.",
)


def record_stones_fetched(feed: str, count: int) -> None:
    stones_fetched.add(count, {"feed": feed})


def record_partition(feed: str, status: str) -> None:
    """A partition finished: `fetched` or `dead_lettered` (the partition statuses of the database)."""
    partitions.add(1, {"feed": feed, "status": status})


def record_dead_letter(kind: str) -> None:
    dead_letters_opened.add(1, {"kind": kind})


def record_request(*, route: str, method: str, status: int, seconds: float) -> None:
    """One API request. `route` is the route template (`/api/v1/diamonds/{diamond_id}`), never the
    raw path: every distinct value is a time series."""
    configure()
    request_duration.record(
        seconds, {"http.route": route, "http.request.method": method, "http.response.status_code": status}
    )


def record_rate_limited(*, budget: str, route: str) -> None:
    """One request refused by a rate limit; `budget` is search, mutation or auth."""
    configure()
    rate_limited.add(1, {"budget": budget, "http.route": route})
