"""The sync's activities: thin adapters from durable inputs (ids, small descriptors) to shared/sync.

Inputs and outputs are small JSON objects; the data itself moves between the feed and PostgreSQL
inside the activities, never through orchestration history. Every activity is `@observed_activity`:
its span and log context come from the `traceparent` and `correlation_id` its orchestrator carried in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df

from activities import deps
from shared.feed.page import FeedPage
from shared.feed.registry import get_feed
from shared.feed.source import FeedSource, PriceBand
from shared.planning.plan import plan_for
from shared.sync import fetch, runs
from shared.sync.bounds import MappingBounds
from shared.sync.consolidate import consolidate
from shared.sync.finalize import finalize_run as finalize
from shared.telemetry import observed_activity, record_dead_letter, record_partition, record_stones_fetched

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
@observed_activity
def start_run(request: dict) -> dict:
    """Create the run row (idempotent by run_id); hand the orchestrator its policy from the settings."""
    get_feed(request["feed"])  # an unknown feed fails here, loudly, before anything is written
    with deps.pool().connection() as conn:
        try:
            run = runs.create_run(
                conn,
                run_id=uuid.UUID(request["run_id"]),
                feed=request["feed"],
                kind=request["kind"],
                trigger=request["trigger"],
                instance_id=request.get("instance_id"),
                as_of=datetime.fromisoformat(request["as_of"]),
            )
        except runs.RunAlreadyActive as exc:
            return {"skipped": str(exc)}
    return run_descriptor(run)


@bp.activity_trigger(input_name="request")
@observed_activity
def reopen_run(request: dict) -> dict:
    """Reopen a run for a dead-letter replay; the partitions to fetch again come back with it."""
    run = load_run(request)
    with deps.pool().connection() as conn:
        numbers = runs.reopen_for_replay(conn, run.run_id)
    return {**run_descriptor(run), "partitions": numbers}


def load_run(request: dict) -> runs.Run:
    run_id = uuid.UUID(request["run_id"])
    with deps.pool().connection() as conn:
        run = runs.get_run(conn, run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    return run


def run_descriptor(run: runs.Run) -> dict:
    """What an orchestrator needs to drive a run: its identity and the policy from the settings."""
    settings = deps.settings()
    return {
        "run_id": str(run.run_id),
        "feed": run.feed,
        "kind": run.kind,
        "policy": {
            "batch_size": settings.sync_batch_size,
            "min_success_share": settings.sync_min_success_share,
            "consolidators": settings.sync_consolidators,
            "fetch_attempts": settings.sync_fetch_attempts,
            "fetch_retry_first_ms": int(settings.sync_fetch_retry_first_seconds * 1000),
        },
    }


@bp.activity_trigger(input_name="request")
@observed_activity
def plan_run(request: dict) -> dict:
    """Plan the run's partitions (once) and return their numbers."""
    settings = deps.settings()
    run = load_run(request)
    run_id = run.run_id
    with deps.pool().connection() as conn:
        existing = runs.partition_numbers(conn, run_id)
    if existing:
        return {"partitions": existing}
    spec = get_feed(run.feed)
    source = deps.source(spec.name)
    if run.kind == "incremental" and run.updated_from is None:
        raise ValueError(f"incremental run {run.run_id} has no updated_from")
    plan = plan_for(
        settings, spec, source, deps.scan_store(), updated_from=run.updated_from, now=run.as_of or datetime.now(UTC)
    )
    summary = {
        "expected_total": plan.expected_total,
        "count_queries": plan.count_queries,
        "scan_reused": plan.scan_reused,
        "balance": round(plan.balance, 3),
    }
    with deps.pool().connection() as conn:
        runs.save_plan(conn, run_id, plan.partitions, summary)
        return {"partitions": runs.partition_numbers(conn, run_id), **summary}


@bp.activity_trigger(input_name="request")
@observed_activity
def fetch_partition(request: dict) -> dict:
    """Fetch one partition from its checkpoint; raises on failure so the durable retry applies."""
    settings = deps.settings()
    run = load_run(request)
    run_id = run.run_id
    result = fetch.fetch_partition(
        deps.pool(),
        CountedSource(deps.source(run.feed)),
        run_id,
        request["partition_no"],
        page_size=settings.feed_page_size,
        max_pages=settings.sync_max_pages_per_partition,
        bounds=MappingBounds.from_settings(settings),
    )
    record_partition(run.feed, result.status)
    return result.__dict__


class CountedSource:
    """A feed source that counts the valid stones of every page it returns (the stones-fetched counter)."""

    def __init__(self, source: FeedSource) -> None:
        self.source = source
        self.feed = source.feed

    def count(self, band: PriceBand, updated_from: datetime | None = None) -> int:
        return self.source.count(band, updated_from)

    def page(self, band: PriceBand, offset: int, limit: int, updated_from: datetime | None = None) -> FeedPage:
        page = self.source.page(band, offset, limit, updated_from)
        record_stones_fetched(self.feed, len(page.items))
        return page


@bp.activity_trigger(input_name="request")
@observed_activity
def dead_letter_partition(request: dict) -> dict:
    run = load_run(request)
    with deps.pool().connection() as conn:
        fetch.record_failure(conn, run.run_id, request["partition_no"], request["error"])
    record_partition(run.feed, "dead_lettered")
    record_dead_letter("partition")
    return {"partition_no": request["partition_no"], "status": "dead_lettered"}


@bp.activity_trigger(input_name="request")
@observed_activity
def consolidate_feed(request: dict) -> dict:
    """Work the feed's consolidation backlog for one time slice."""
    settings = deps.settings()
    with deps.pool().connection() as conn:
        runs.set_status(conn, uuid.UUID(request["run_id"]), "consolidating")
    spec = get_feed(request["feed"])
    # A fresh worker id per execution: a duplicated activity never shares claims with its twin.
    worker = f"{request['worker']}-{uuid.uuid4().hex[:8]}"
    result = consolidate(
        deps.pool(),
        spec.name,
        worker=worker,
        lab_grown_default=spec.lab_grown,
        batch_size=settings.sync_consolidation_batch,
        lease=timedelta(seconds=settings.sync_consolidation_lease_seconds),
        max_seconds=settings.sync_consolidation_slice_seconds,
        bounds=MappingBounds.from_settings(settings),
    )
    return result.as_dict()


@bp.activity_trigger(input_name="request")
@observed_activity
def finalize_run(request: dict) -> dict:
    with deps.pool().connection() as conn:
        runs.set_status(conn, uuid.UUID(request["run_id"]), "finalizing")
        return finalize(conn, uuid.UUID(request["run_id"]))


@bp.activity_trigger(input_name="request")
@observed_activity
def fail_run(request: dict) -> dict:
    with deps.pool().connection() as conn:
        runs.set_status(conn, uuid.UUID(request["run_id"]), "failed", error=request["error"])
    return {"run_id": request["run_id"], "status": "failed", "error": request["error"]}
