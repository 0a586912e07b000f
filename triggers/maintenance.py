"""Timer functions that keep the system tidy: notification delivery every minute, retention daily.

Their schedules are app settings (NOTIFY_DELIVERY_SCHEDULE, RETENTION_SCHEDULE), like the sync
timers'. The work itself is in shared/notify and shared/retention; these only call it and log.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from activities import deps
from shared.notify.deliver import deliver_due
from shared.retention.rules import orchestration_cutoff
from shared.retention.sweep import sweep

bp = df.Blueprint()
log = logging.getLogger(__name__)

# Under the one-minute schedule, so that two firings do not overlap (a second one would only find
# the first one's claims locked, but there is no use in it).
DELIVERY_SECONDS = 50
FINISHED = [
    df.OrchestrationRuntimeStatus.Completed,
    df.OrchestrationRuntimeStatus.Failed,
    df.OrchestrationRuntimeStatus.Terminated,
]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the purge API insists on a lower bound


@bp.function_name(name="timer_notify_delivery")
@bp.timer_trigger(schedule="%NOTIFY_DELIVERY_SCHEDULE%", arg_name="timer", run_on_startup=False)
def notify_delivery(timer: func.TimerRequest) -> None:
    report = deliver_due(deps.pool(), deps.settings(), max_seconds=DELIVERY_SECONDS)
    if report.events or report.delivered or report.retrying or report.given_up:
        log.info("notification delivery", extra=asdict(report))


@bp.function_name(name="timer_retention")
@bp.timer_trigger(schedule="%RETENTION_SCHEDULE%", arg_name="timer", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def retention(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    await run_retention(client)


async def run_retention(client: Any) -> None:
    """The database sweep, then the purge of finished orchestration history older than its retention."""
    now = datetime.now(UTC)
    # The sweep is blocking database work; off the event loop it leaves the worker responsive.
    report = await asyncio.to_thread(lambda: sweep(deps.pool(), deps.settings(), now=now))
    purged = await purge_orchestration_history(client, orchestration_cutoff(deps.settings(), now))
    log.info("retention done", extra={**asdict(report), "orchestration_history": purged})


async def purge_orchestration_history(client: Any, cutoff: datetime) -> int:
    """Purge the history of orchestrations that finished and were created before `cutoff`; return how many."""
    result = await client.purge_instance_history_by(
        created_time_from=EPOCH, created_time_to=cutoff, runtime_status=FINISHED
    )
    deleted: int = result.instances_deleted
    return deleted
