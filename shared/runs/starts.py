"""Starting the orchestrations that drive runs: their instance ids, their inputs, the start helpers.

Three orchestrations drive a run: `sync_run` (a timer, the operator route or the CLI starts it),
`sync_replay` (fetch a finished run's dead-lettered partitions again) and `sync_resume` (consolidate
and finalize a run that stopped in consolidation). Their instance ids:

- `sync-<feed>`: one per feed, so a second start while the feed's run is active is refused
  (a singleton: the durable host keeps one instance per id);
- `replay-<run_id>-<8 hex>` and `resume-<run_id>-<8 hex>`: one per operator action, naming the run.

The async helpers take any durable client with the SDK's `get_status` and `start_new` coroutines: the
Functions binding in Azure, the local host's async client on a laptop. The CLI drives the local host's
sync client with the same ids and inputs.

A start is a trigger span (the root of the run's trace) and carries the caller's correlation id: the
request's (an HTTP route sets shared.logs.correlation_id), or a new one per timer firing.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from shared import logs
from shared.telemetry import carrier, trigger_span

log = logging.getLogger(__name__)

SYNC = "sync_run"
REPLAY = "sync_replay"
RESUME = "sync_resume"
# The durable runtime statuses of an instance that still drives its run.
_RUNNING = ("Running", "Pending")


class DurableClient(Protocol):
    async def get_status(self, instance_id: str) -> Any: ...

    async def start_new(self, orchestration_function_name: str, instance_id: str | None, client_input: Any) -> str: ...


def sync_instance_id(feed: str) -> str:
    return f"sync-{feed}"


def replay_instance_id(run_id: uuid.UUID | str) -> str:
    return f"replay-{run_id}-{uuid.uuid4().hex[:8]}"


def resume_instance_id(run_id: uuid.UUID | str) -> str:
    return f"resume-{run_id}-{uuid.uuid4().hex[:8]}"


def sync_request(feed: str, kind: str, trigger: str) -> dict[str, Any]:
    """The input of a `sync_run`: the run, plus the caller's correlation id and trace context."""
    return {"feed": feed, "kind": kind, "trigger": trigger, "run_id": str(uuid.uuid4()), **carrier()}


def run_request(run_id: uuid.UUID | str) -> dict[str, Any]:
    """The input of a `sync_replay` or `sync_resume`: the run they work on."""
    return {"run_id": str(run_id)}


async def is_running(client: DurableClient, instance_id: str | None) -> bool:
    """Whether the instance exists and still drives its run (the SDK's status enum or the local host's str)."""
    if not instance_id:
        return False
    status = await client.get_status(instance_id)
    if status is None or status.runtime_status is None:
        return False
    return getattr(status.runtime_status, "value", status.runtime_status) in _RUNNING


async def start_sync(client: DurableClient, feed: str, kind: str, trigger: str) -> dict[str, Any] | None:
    """Start a run of `feed` unless one is active; return its start request (run_id, correlation_id, ...)
    with the instance id, or None. Timers, the operator route and the tests start runs through this."""
    instance_id = sync_instance_id(feed)
    with trigger_span("start sync_run", feed=feed, kind=kind, trigger=trigger, instance_id=instance_id) as span:
        if await is_running(client, instance_id):
            log.info("sync still active; start skipped", extra={"feed": feed, "kind": kind, "instance_id": instance_id})
            return None
        request = sync_request(feed, kind, trigger)
        span.set_attributes({"run_id": request["run_id"], "correlation_id": request["correlation_id"]})
        with logs.correlated(correlation_id=request["correlation_id"], run_id=request["run_id"]):
            started = await client.start_new(SYNC, instance_id, request)
            log.info("sync started", extra={"feed": feed, "kind": kind, "trigger": trigger, "instance_id": started})
        return {**request, "instance_id": started}


async def start_replay(client: DurableClient, run_id: uuid.UUID) -> str:
    """Start a replay of the run's open dead letters; the caller checked the replay rule first."""
    return await client.start_new(REPLAY, replay_instance_id(run_id), run_request(run_id))


async def start_resume(client: DurableClient, run_id: uuid.UUID) -> str:
    """Start consolidating a stopped run again; the caller checked the resume rule first."""
    return await client.start_new(RESUME, resume_instance_id(run_id), run_request(run_id))
