"""Sync timers: one full and one incremental timer per feed, each starting a run of its feed.

Each feed's schedules come from app settings named after it (SYNC_SCHEDULE_FULL_NIVODA_NATURAL,
...), so a feed added to the registry gets its timers without changes here. A timer that fires while
the feed's run is still active starts nothing: the feed's instance id is a singleton
(shared/runs/starts.py).
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from shared import logs
from shared.feed.registry import FEEDS
from shared.runs.starts import start_sync

bp = df.Blueprint()


def schedule_setting(feed: str, kind: str) -> str:
    return f"SYNC_SCHEDULE_{kind.upper()}_{feed.upper().replace('-', '_')}"


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
