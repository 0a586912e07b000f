"""Client functions that start sync runs in Azure: one full and one incremental timer per feed.

Each feed's schedules come from app settings named after it (SYNC_SCHEDULE_FULL_NIVODA_NATURAL,
...), so a feed added to the registry gets its timers without changes here. A timer that fires while
the feed's run is still active starts nothing: the feed's instance id is a singleton.

A start is a trigger span (the root of the run's trace) and carries the caller's correlation id: the
request's (an HTTP route sets shared.logs.correlation_id), or a new one per timer firing.
"""

from __future__ import annotations

import logging
import uuid

import azure.durable_functions as df
import azure.functions as func

from orchestrators.sync_run import sync_instance_id
from shared import logs
from shared.feed.registry import FEEDS
from shared.telemetry import carrier, trigger_span

bp = df.Blueprint()
log = logging.getLogger(__name__)

ACTIVE = (df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending)


def schedule_setting(feed: str, kind: str) -> str:
    return f"SYNC_SCHEDULE_{kind.upper()}_{feed.upper().replace('-', '_')}"


def sync_request(feed: str, kind: str, trigger: str) -> dict:
    """The input of a `sync_run`: the run, plus the caller's correlation id and trace context."""
    return {"feed": feed, "kind": kind, "trigger": trigger, "run_id": str(uuid.uuid4()), **carrier()}


async def start_sync(client: df.DurableOrchestrationClient, feed: str, kind: str, trigger: str) -> str | None:
    """Start a run of `feed` unless one is active; return the instance id started, or None."""
    started = await start_run(client, feed, kind, trigger)
    return None if started is None else started["instance_id"]


async def start_run(client: df.DurableOrchestrationClient, feed: str, kind: str, trigger: str) -> dict | None:
    """Start a run of `feed` unless one is active; return its start request (run_id, correlation_id,
    ...) with the instance id, or None. Timers and the operator route both start runs through this."""
    instance_id = sync_instance_id(feed)
    with trigger_span("start sync_run", feed=feed, kind=kind, trigger=trigger, instance_id=instance_id) as span:
        status = await client.get_status(instance_id)
        if status is not None and status.runtime_status in ACTIVE:
            log.info("sync still active; start skipped", extra={"feed": feed, "kind": kind, "instance_id": instance_id})
            return None
        request = sync_request(feed, kind, trigger)
        span.set_attributes({"run_id": request["run_id"], "correlation_id": request["correlation_id"]})
        with logs.correlated(correlation_id=request["correlation_id"], run_id=request["run_id"]):
            started = await client.start_new("sync_run", instance_id, request)
            log.info("sync started", extra={"feed": feed, "kind": kind, "trigger": trigger, "instance_id": started})
        return {**request, "instance_id": started}


def _register_timer(feed: str, kind: str) -> None:
    @bp.function_name(name=f"timer_{kind}_{feed.replace('-', '_')}")
    @bp.timer_trigger(schedule=f"%{schedule_setting(feed, kind)}%", arg_name="timer", run_on_startup=False)
    @bp.durable_client_input(client_name="client")
    async def start(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
        # Each firing is its own cause: a new correlation id for it and the run it starts.
        with logs.correlated(correlation_id=logs.new_correlation_id()):
            await start_sync(client, feed, kind, "timer")


for _feed in FEEDS:
    for _kind in ("full", "incremental"):
        _register_timer(_feed, _kind)
