"""Client functions that start sync runs in Azure: one full and one incremental timer per feed.

Each feed's schedules come from app settings named after it (SYNC_SCHEDULE_FULL_NIVODA_NATURAL,
...), so a feed added to the registry gets its timers without changes here. A timer that fires while
the feed's run is still active starts nothing: the feed's instance id is a singleton.
"""

from __future__ import annotations

import logging
import uuid

import azure.durable_functions as df
import azure.functions as func

from orchestrators.sync_run import sync_instance_id
from shared.feed.registry import FEEDS

bp = df.Blueprint()
log = logging.getLogger(__name__)

ACTIVE = (df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending)


def schedule_setting(feed: str, kind: str) -> str:
    return f"SYNC_SCHEDULE_{kind.upper()}_{feed.upper().replace('-', '_')}"


def sync_request(feed: str, kind: str, trigger: str) -> dict:
    return {"feed": feed, "kind": kind, "trigger": trigger, "run_id": str(uuid.uuid4())}


async def start_sync(client: df.DurableOrchestrationClient, feed: str, kind: str, trigger: str) -> str | None:
    """Start a run of `feed` unless one is active; return the instance id started, or None."""
    instance_id = sync_instance_id(feed)
    status = await client.get_status(instance_id)
    if status is not None and status.runtime_status in ACTIVE:
        log.info("sync still active; timer skipped", extra={"feed": feed, "kind": kind, "instance_id": instance_id})
        return None
    return await client.start_new("sync_run", instance_id, sync_request(feed, kind, trigger))


def _register_timer(feed: str, kind: str) -> None:
    @bp.function_name(name=f"timer_{kind}_{feed.replace('-', '_')}")
    @bp.timer_trigger(schedule=f"%{schedule_setting(feed, kind)}%", arg_name="timer", run_on_startup=False)
    @bp.durable_client_input(client_name="client")
    async def start(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
        await start_sync(client, feed, kind, "timer")


for _feed in FEEDS:
    for _kind in ("full", "incremental"):
        _register_timer(_feed, _kind)
