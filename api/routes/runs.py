"""Operator endpoints for runs (admin scope): start, list, show, watch, replay, cancel and resume.

Orchestrations are started and stopped through the durable client (api/deps.py), so the same code
drives the Functions host in Azure and the local host under `caratflow serve`. Every state a route
reports is read from the database, which the activities keep current. The rules of replay, cancel and
resume are shared/runs' (states.py): a route asks them for a prompt 409, and the change itself
applies them again under the run's lock, whoever started it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, StringConstraints

from api.deps import AdminCaller, AppState, Connection, DurableClient
from api.encoding import JsonResponse
from api.problems import Problem
from api.streams import Look, event_stream
from shared.feed.registry import FeedName
from shared.runs import dead_letters, lifecycle, reads, starts
from shared.runs.states import (
    FINISHED,
    Refusal,
    RunKind,
    RunStateConflict,
    RunStatus,
    cancel_refusal,
    replay_refusal,
    resume_refusal,
)
from shared.text import SafeText

router = APIRouter(prefix="/api/v1/runs", tags=["operations"])

START_WAIT_SECONDS = 10.0
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"application/problem+json": {}}}
    for status, description in (
        (400, "Invalid request"),
        (401, "Unauthenticated"),
        (403, "Missing scope"),
        (404, "Unknown run or dead letter"),
        (409, "Not allowed in the current state"),
        (429, "Rate limited"),
        (503, "No durable client, or database unavailable (Retry-After)"),
    )
}


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feed: FeedName
    kind: RunKind = "full"


class CancelRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[SafeText, StringConstraints(min_length=1, max_length=500)] = "cancelled by an operator"


def conflict(refused: Refusal | RunStateConflict) -> Problem:
    return Problem(409, "conflict", "Not allowed now", refused.detail, refused.hint)


def unknown_run(run_id: uuid.UUID) -> Problem:
    return Problem(404, "unknown-run", "Unknown run", f"No run has id {run_id}.", "List runs: GET /api/v1/runs.")


async def run_or_404(conn: AsyncConnection, run_id: uuid.UUID) -> dict[str, Any]:
    run = await reads.arun_record(conn, run_id)
    if run is None:
        raise unknown_run(run_id)
    return run


async def replay(conn: AsyncConnection, client: Any, run: dict[str, Any]) -> Response:
    """Start a replay of the run's open dead letters, if the replay rule allows it now."""
    run_id = run["run_id"]
    open_letters = await dead_letters.acount_open(conn, run_id)
    refusal = replay_refusal(run_id, run["status"], open_letters)
    if refusal is not None:
        raise conflict(refusal)
    instance_id = await starts.start_replay(client, run_id)
    body = {"run_id": str(run_id), "instance_id": instance_id, "partitions": open_letters}
    return JsonResponse(body, status_code=202, headers={"Location": f"/api/v1/runs/{run_id}"})


@router.post("", status_code=202, responses=PROBLEMS, summary="Start a run of one feed")
async def post_run(conn: Connection, caller: AdminCaller, client: DurableClient, body: StartRun) -> Response:
    start = await starts.start_sync(client, body.feed, body.kind, "http")
    if start is None:
        raise conflict(Refusal(f"a run of {body.feed} is already active", "Watch it, or cancel it first."))
    run = await _await_run_row(conn, uuid.UUID(start["run_id"]))
    shown = run or {"run_id": start["run_id"], "feed": body.feed, "kind": body.kind, "status": "starting"}
    return JsonResponse(
        {**shown, "instance_id": start["instance_id"]},
        status_code=202,
        headers={"Location": f"/api/v1/runs/{start['run_id']}"},
    )


async def _await_run_row(conn: AsyncConnection, run_id: uuid.UUID) -> dict[str, Any] | None:
    """The run's row, once its first activity has written it (bounded: START_WAIT_SECONDS).

    Waiting here means the Location answers as soon as the caller follows it; a host that is slow
    to schedule the activity gets a 202 with status "starting" instead, and the run appears later.
    It looks on the request's connection (autocommit: each look sees the activity's commit), so a
    wait never takes a second one from the pool.
    """
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        run = await reads.arun_record(conn, run_id)
        if run is not None or time.monotonic() >= deadline:
            return run
        await asyncio.sleep(0.05)


@router.get("", responses=PROBLEMS, summary="Runs, newest first")
async def get_runs(
    conn: Connection,
    caller: AdminCaller,
    feed: FeedName | None = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    return JsonResponse({"data": await reads.alist_runs(conn, feed, status, limit)})


@router.get("/{run_id}", responses=PROBLEMS, summary="One run with per-partition progress")
async def get_run(conn: Connection, caller: AdminCaller, run_id: uuid.UUID) -> Response:
    shown = await reads.aprogress(conn, run_id)
    if shown is None:
        raise unknown_run(run_id)
    return JsonResponse(shown)


@router.get(
    "/{run_id}/events",
    responses={**PROBLEMS, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
    summary="A run's progress as server-sent events, until it finishes",
)
async def get_run_events(
    request: Request,
    state: AppState,
    conn: Connection,
    caller: AdminCaller,
    run_id: uuid.UUID,
    interval: Annotated[float, Query(ge=0.1, le=30)] = 1.0,
    max_seconds: Annotated[float, Query(ge=1, le=3600)] = 300,
) -> StreamingResponse:
    """`progress` whenever the run or a partition changes, `end` when the run finishes, `timeout` after
    max_seconds (reconnect to go on): api/streams.py."""
    await run_or_404(conn, run_id)

    async def look() -> Look | None:
        # The handler's connection went back to the pool before the stream began: one per look here.
        async with state.connection() as looking:
            shown = await reads.aprogress(looking, run_id)
        if shown is None:  # deleted meanwhile (retention removes finished runs only, so it had ended)
            return None
        status = shown["run"]["status"]
        return Look(shown, status if status in FINISHED else None)

    return event_stream(request, look, {"run_id": str(run_id)}, interval=interval, max_seconds=max_seconds)


@router.post(
    "/{run_id}/replay", status_code=202, responses=PROBLEMS, summary="Fetch a run's dead-lettered partitions again"
)
async def post_run_replay(conn: Connection, caller: AdminCaller, client: DurableClient, run_id: uuid.UUID) -> Response:
    return await replay(conn, client, await run_or_404(conn, run_id))


@router.post("/{run_id}/cancel", responses=PROBLEMS, summary="Stop a run: terminate its orchestration")
async def post_run_cancel(
    conn: Connection, caller: AdminCaller, client: DurableClient, run_id: uuid.UUID, body: CancelRun | None = None
) -> Response:
    reason = (body or CancelRun()).reason
    run = await run_or_404(conn, run_id)
    refusal = cancel_refusal(run_id, run["status"])
    if refusal is not None:
        raise conflict(refusal)
    if await starts.is_running(client, run["instance_id"]):
        await client.terminate(run["instance_id"], reason)
    try:
        cancelled = await lifecycle.acancel_run(conn, run_id, reason)
    except RunStateConflict as exc:
        raise conflict(exc) from None
    return JsonResponse(cancelled)


@router.post("/{run_id}/resume", status_code=202, responses=PROBLEMS, summary="Consolidate and finalize a stalled run")
async def post_run_resume(conn: Connection, caller: AdminCaller, client: DurableClient, run_id: uuid.UUID) -> Response:
    run = await run_or_404(conn, run_id)
    refusal = resume_refusal(run_id, run["status"], run["error"])
    if refusal is not None:
        raise conflict(refusal)
    if await starts.is_running(client, run["instance_id"]):
        raise conflict(
            Refusal(f"run {run_id} is still being driven by {run['instance_id']}", "Wait for it, or cancel it.")
        )
    instance_id = await starts.start_resume(client, run_id)
    body = {"run_id": str(run_id), "instance_id": instance_id}
    return JsonResponse(body, status_code=202, headers={"Location": f"/api/v1/runs/{run_id}"})
