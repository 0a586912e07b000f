"""The sync's activities: thin adapters from durable inputs (ids, small descriptors) to shared/sync.

Inputs and outputs are small JSON objects; the data itself moves between the feed and PostgreSQL
inside the activities, never through orchestration history. Every activity is `@observed_activity`:
its span and log context come from the `traceparent` and `correlation_id` its orchestrator carried in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df

from activities import deps
from shared.feed.page import FeedPage
from shared.feed.registry import get_feed
from shared.feed.source import FeedSource, PriceBand
from shared.planning.plan import plan_for
from shared.runs import dead_letters, lifecycle, partitions
from shared.runs.reads import Run, load_run
from shared.runs.states import RunAlreadyActive
from shared.sync import fetch
from shared.sync.bounds import MappingBounds
from shared.sync.consolidate import consolidate
from shared.sync.finalize import finalize_run as finalize
from shared.telemetry import observed_activity, record_dead_letter, record_partition, record_stones_fetched

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
@observed_activity
def create_run(request: dict[str, Any]) -> dict[str, Any]:
    """Create the run row (idempotent by run_id); hand the orchestrator its policy from the settings."""
    get_feed(request["feed"])  # an unknown feed fails here, loudly, before anything is written
    with deps.pool().connection() as conn:
        try:
            run = lifecycle.create_run(
                conn,
                run_id=uuid.UUID(request["run_id"]),
                feed=request["feed"],
                kind=request["kind"],
                trigger=request["trigger"],
                instance_id=request.get("instance_id"),
                as_of=datetime.fromisoformat(request["as_of"]),
            )
        except RunAlreadyActive as exc:
            return {"skipped": str(exc)}
    return run_descriptor(run)


def run_of(request: dict[str, Any]) -> Run:
    with deps.pool().connection() as conn:
        return load_run(conn, uuid.UUID(request["run_id"]))


def run_descriptor(run: Run) -> dict[str, Any]:
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
def plan_run(request: dict[str, Any]) -> dict[str, Any]:
    """Plan the run's partitions (once) and return their numbers."""
    settings = deps.settings()
    run = run_of(request)
    run_id = run.run_id
    with deps.pool().connection() as conn:
        existing = partitions.numbers(conn, run_id)
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
        lifecycle.save_plan(conn, run_id, plan.partitions, summary)
        return {"partitions": partitions.numbers(conn, run_id), **summary}


@bp.activity_trigger(input_name="request")
@observed_activity
def fetch_partition(request: dict[str, Any]) -> dict[str, Any]:
    """Fetch one partition from its checkpoint; raises on failure so the durable retry applies.
    Input: {run_id, feed, partition_no}."""
    settings = deps.settings()
    result = fetch.fetch_partition(
        deps.pool(),
        CountedSource(deps.source(request["feed"])),
        uuid.UUID(request["run_id"]),
        request["partition_no"],
        page_size=settings.feed_page_size,
        max_pages=settings.sync_max_pages_per_partition,
        bounds=MappingBounds.from_settings(settings),
    )
    record_partition(request["feed"], result.status)
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
def dead_letter_partition(request: dict[str, Any]) -> dict[str, Any]:
    """Input: {run_id, feed, partition_no, error}."""
    with deps.pool().connection() as conn:
        run_id = uuid.UUID(request["run_id"])
        dead_letters.dead_letter_partition(conn, run_id, request["partition_no"], request["error"])
    record_partition(request["feed"], "dead_lettered")
    record_dead_letter("partition")
    return {"partition_no": request["partition_no"], "status": "dead_lettered"}


@bp.activity_trigger(input_name="request")
@observed_activity
def consolidate_feed(request: dict[str, Any]) -> dict[str, Any]:
    """Work the feed's consolidation backlog for one time slice."""
    settings = deps.settings()
    with deps.pool().connection() as conn:
        lifecycle.set_status(conn, uuid.UUID(request["run_id"]), "consolidating")
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
def finalize_run(request: dict[str, Any]) -> dict[str, Any]:
    with deps.pool().connection() as conn:
        lifecycle.set_status(conn, uuid.UUID(request["run_id"]), "finalizing")
        return finalize(conn, uuid.UUID(request["run_id"]))


@bp.activity_trigger(input_name="request")
@observed_activity
def fail_run(request: dict[str, Any]) -> dict[str, Any]:
    with deps.pool().connection() as conn:
        lifecycle.set_status(conn, uuid.UUID(request["run_id"]), "failed", error=request["error"])
    return {"run_id": request["run_id"], "status": "failed", "error": request["error"]}
