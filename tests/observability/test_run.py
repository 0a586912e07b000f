"""A run seen from its logs, its trace and its metrics: one correlation id from the trigger into every
activity, orchestrator lines written once despite replays, spans nested trigger -> orchestrator ->
activity -> database, counters equal to what the run did."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from shared.logs import JsonFormatter, fields
from shared.telemetry import carrier, prometheus_text, read_metrics, record_rate_limited, record_request

RUN_LOGGERS = ("orchestrators", "activities", "shared.sync", "shared.planning", "shared.feed")
# The trigger's thread, the local host's (orchestrator episodes, activities) and the threads domain
# code starts for a run (the density scan's pool, consolidation's lease renewal), which copy the context.
RUN_THREADS = ("MainThread", "host-", "scan", "renew-")


def _activities_run(run: Any) -> set[str]:
    return {
        row["name"]
        for row in run.history(
            "SELECT DISTINCT event->>'Name' AS name FROM durable_history WHERE (event->>'EventType')::int = 4"
        )
    }


def test_the_correlation_id_reaches_the_orchestrator_and_every_activity(observed_run: Any) -> None:
    ours = [r for r in observed_run.records if r.name.startswith(RUN_LOGGERS) and r.threadName.startswith(RUN_THREADS)]
    assert ours
    assert any(r.threadName.startswith("scan") for r in ours)  # the scan pool's lines are checked too
    for record in ours:
        assert (record.correlation_id, record.run_id) == (observed_run.correlation_id, observed_run.run_id), (
            record.getMessage()
        )
    orchestrator_lines = [r for r in ours if r.name == "orchestrators.sync_run"]
    assert {r.getMessage() for r in orchestrator_lines} >= {"run started", "run planned", "run finished"}
    finished = {r.activity for r in ours if r.getMessage() == "activity finished"}
    assert finished == _activities_run(observed_run) >= {"create_run", "plan_run", "fetch_partition", "finalize_run"}
    trigger = next(r for r in observed_run.records if r.getMessage() == "sync started")
    assert (trigger.correlation_id, trigger.run_id) == (observed_run.correlation_id, observed_run.run_id)


def test_log_lines_are_json_with_their_context(observed_run: Any) -> None:
    record = next(r for r in observed_run.records if r.getMessage() == "run planned")
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "run planned"
    assert line["logger"] == "orchestrators.sync_run"
    assert line["correlation_id"] == observed_run.correlation_id
    assert line["run_id"] == observed_run.run_id
    assert line["instance_id"] == observed_run.status.instance_id
    assert len(line["trace_id"]) == 32
    assert line["partitions"] >= 2


def test_orchestrator_lines_are_written_once_although_the_orchestrators_replayed(observed_run: Any) -> None:
    (episodes,) = observed_run.history(
        """SELECT count(*) AS n FROM durable_history
           WHERE instance_id = %s AND (event->>'EventType')::int = 12""",
        observed_run.status.instance_id,
    )
    assert episodes["n"] > 5  # every episode replays the history so far through the orchestrator
    lines = Counter(
        json.dumps({"message": r.getMessage(), **fields(r)}, sort_keys=True, default=str)
        for r in observed_run.records
        if r.name == "orchestrators.sync_run"
    )
    assert lines, "no orchestrator lines"
    assert max(lines.values()) == 1, [line for line, n in lines.items() if n > 1]
    messages = Counter(r.getMessage() for r in observed_run.records if r.name == "orchestrators.sync_run")
    assert messages["run started"] == messages["run planned"] == messages["run finished"] == 1


def test_spans_nest_trigger_orchestrator_activity_database(observed_run: Any) -> None:
    spans = observed_run.spans
    by_id = {s.context.span_id: s for s in spans}

    def parent(span: Any) -> Any:
        return by_id.get(span.parent.span_id) if span.parent else None

    def named(name: str) -> list[Any]:
        return [s for s in spans if s.name == name]

    (trigger,) = named("start sync_run")
    assert trigger.attributes["correlation_id"] == observed_run.correlation_id
    (run,) = named("orchestrator sync_run")  # recorded once, however often it replayed
    batches, partitions = named("orchestrator sync_fetch_batch"), named("orchestrator sync_fetch_partition")
    assert len(batches) >= 2
    assert len(partitions) >= 3
    assert parent(run) is trigger
    assert all(parent(b) is run for b in batches)
    assert all(parent(p) in batches for p in partitions)
    fetches = named("activity fetch_partition")
    assert len(fetches) == len(partitions)
    assert {parent(f).context.span_id for f in fetches} == {p.context.span_id for p in partitions}
    for name in ("create_run", "plan_run", "consolidate_feed", "finalize_run"):
        assert named(f"activity {name}"), name
        assert all(parent(s) is run for s in named(f"activity {name}")), name
    activities = [s for s in spans if s.name.startswith("activity ")]
    queries = [s for s in spans if s.instrumentation_scope.name == "opentelemetry.instrumentation.psycopg"]
    assert queries
    assert all(parent(q) in activities for q in queries)  # no query span outside a trace: the host's are not traced
    assert {parent(q).name for q in queries} >= {"activity fetch_partition", "activity consolidate_feed"}
    assert {s.context.trace_id for s in spans} == {trigger.context.trace_id}
    assert all(s.attributes["run_id"] == observed_run.run_id for s in [run, *batches, *partitions, *activities])


def _delta(run: Any, name: str, **attributes: object) -> float:
    key = frozenset(attributes.items())
    delta: float = run.metrics_after.get(name, {}).get(key, 0) - run.metrics_before.get(name, {}).get(key, 0)
    return delta


def test_metrics_count_what_the_run_did(observed_run: Any) -> None:
    (done,) = observed_run.history(
        """SELECT sum(rows_fetched) AS stones, count(*) FILTER (WHERE status = 'fetched') AS fetched,
                  count(*) FILTER (WHERE status = 'dead_lettered') AS dead_lettered
           FROM partitions WHERE run_id = %s""",
        observed_run.run_id,
    )
    assert done["stones"] > 0
    assert _delta(observed_run, "caratflow.stones.fetched", feed=observed_run.feed) == done["stones"]
    assert _delta(observed_run, "caratflow.partitions", feed=observed_run.feed, status="fetched") == done["fetched"]
    assert done["dead_lettered"] == 0
    assert _delta(observed_run, "caratflow.partitions", feed=observed_run.feed, status="dead_lettered") == 0
    # Read from the database when collected: consolidated to the last row, nothing dead-lettered.
    assert observed_run.metrics_after["caratflow.consolidation.backlog"][frozenset({("feed", observed_run.feed)})] == 0
    assert observed_run.metrics_after["caratflow.dead_letters.open"][frozenset({("kind", "partition")})] == 0


def test_prometheus_text_names_every_metric(observed_run: Any) -> None:
    text = observed_run.prometheus.decode()
    for name in (
        "caratflow_stones_fetched_total",
        "caratflow_partitions_total",
        "caratflow_consolidation_backlog",
        "caratflow_dead_letters_open",
    ):
        assert f"\n{name}{{" in text, name
    record_request(route="/api/v1/diamonds", method="GET", status=200, seconds=0.012)
    record_rate_limited(budget="search", route="/api/v1/diamonds")
    body, content_type = prometheus_text()
    assert content_type.startswith("text/plain; version=")
    text = body.decode()
    assert 'caratflow_api_request_duration_seconds_bucket{http_request_method="GET"' in text
    assert 'caratflow_api_rate_limited_total{budget="search",http_route="/api/v1/diamonds"} ' in text


def test_a_dead_letter_is_counted_and_shows_as_open(observed_run: Any) -> None:
    from activities.sync import dead_letter_partition

    before = read_metrics()
    dead_letter_partition(
        {
            "run_id": observed_run.run_id,
            "feed": observed_run.feed,
            "partition_no": 0,
            "error": "gave up (test)",
            **carrier(),
        }
    )
    after = read_metrics()
    opened = frozenset({("kind", "partition")})
    opened_before = before.get("caratflow.dead_letters.opened", {}).get(opened, 0)
    assert after["caratflow.dead_letters.opened"][opened] - opened_before == 1
    assert after["caratflow.dead_letters.open"][opened] == 1
    assert "\ncaratflow_dead_letters_opened_total{" in prometheus_text()[0].decode()
