"""Operator endpoints (admin scope): start, list, show, watch, retry, cancel and resume runs; list,
replay and purge dead letters.

Orchestrations are started and stopped through the durable client (`api/durable.py`), so the same
code drives the Functions host in Azure and the local host under `caratflow serve`. Every state a
route reports is read from the database, which the activities keep current.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import azure.durable_functions as df
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from api.auth import AdminCaller, state_of
from api.durable import DurableClient
from api.encoding import JsonResponse, encode
from api.problems import Problem
from orchestrators.triggers import start_run as start_run_of
from shared.feed.registry import FeedName
from shared.sync import control
from shared.text import SafeText

router = APIRouter(prefix="/api/v1/runs", tags=["operations"])
letters = APIRouter(prefix="/api/v1/dead-letters", tags=["operations"])

_ACTIVE = (df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending)
RunStatus = Literal[
    "pending",
    "planning",
    "fetching",
    "consolidating",
    "finalizing",
    "succeeded",
    "partially_succeeded",
    "failed",
    "cancelled",
]
START_WAIT_SECONDS = 10.0
LetterStatus = Literal["open", "replaying", "replayed", "purged"]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
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
    kind: Literal["full", "incremental"] = "full"


class CancelRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[SafeText, StringConstraints(min_length=1, max_length=500)] = "cancelled by an operator"


def _conflict(detail: str, hint: str) -> Problem:
    return Problem(409, "conflict", "Not allowed now", detail, hint)


def _unknown_run(run_id: uuid.UUID) -> Problem:
    return Problem(404, "unknown-run", "Unknown run", f"No run has id {run_id}.", "List runs: GET /api/v1/runs.")


async def _active(client: Any, instance_id: str | None) -> bool:
    if not instance_id:
        return False
    status = await client.get_status(instance_id)
    return status is not None and status.runtime_status in _ACTIVE


async def _run_or_404(request: Request, run_id: uuid.UUID) -> dict[str, Any]:
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        run = await control.get_run(conn, run_id)
    if run is None:
        raise _unknown_run(run_id)
    return run


@router.post("", status_code=202, responses=_PROBLEMS, summary="Start a run of one feed")
async def start_run(request: Request, principal: AdminCaller, client: DurableClient, body: StartRun) -> Response:
    start = await start_run_of(client, body.feed, body.kind, "http")
    if start is None:
        raise _conflict(f"a run of {body.feed} is already active", "Watch it, or cancel it first.")
    instance_id = start["instance_id"]
    run = await _await_run_row(request, uuid.UUID(start["run_id"]))
    body_out = run or {"run_id": start["run_id"], "feed": body.feed, "kind": body.kind, "status": "starting"}
    return JsonResponse(
        {**body_out, "instance_id": instance_id},
        status_code=202,
        headers={"Location": f"/api/v1/runs/{start['run_id']}"},
    )


async def _await_run_row(request: Request, run_id: uuid.UUID) -> dict[str, Any] | None:
    """The run's row, once its first activity has written it (bounded: START_WAIT_SECONDS).

    Waiting here means the Location answers as soon as the caller follows it; a host that is slow
    to schedule the activity gets a 202 with status "starting" instead, and the run appears later.
    """
    pool = await state_of(request).db()
    deadline = time.monotonic() + START_WAIT_SECONDS
    while True:
        async with pool.connection() as conn:
            run = await control.get_run(conn, run_id)
        if run is not None or time.monotonic() >= deadline:
            return run
        await asyncio.sleep(0.05)


@router.get("", responses=_PROBLEMS, summary="Runs, newest first")
async def list_runs(
    request: Request,
    principal: AdminCaller,
    feed: FeedName | None = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        rows = await control.list_runs(conn, feed, status, limit)
    return JsonResponse({"data": rows})


@router.get("/{run_id}", responses=_PROBLEMS, summary="One run with per-partition progress")
async def show_run(request: Request, principal: AdminCaller, run_id: uuid.UUID) -> Response:
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        shown = await control.progress(conn, run_id)
    if shown is None:
        raise _unknown_run(run_id)
    return JsonResponse(shown)


@router.get(
    "/{run_id}/events",
    responses={**_PROBLEMS, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
    summary="A run's progress as server-sent events, until it finishes",
)
async def run_events(
    request: Request,
    principal: AdminCaller,
    run_id: uuid.UUID,
    interval: Annotated[float, Query(ge=0.1, le=30)] = 1.0,
    max_seconds: Annotated[float, Query(ge=1, le=3600)] = 300,
) -> StreamingResponse:
    """`progress` whenever the run or a partition changes, `end` when the run finishes, `timeout` after
    max_seconds (reconnect to go on). Under the Functions host the HTTP worker buffers a response unless
    HTTP streaming is enabled, so there the events arrive together when the stream ends."""
    await _run_or_404(request, run_id)
    return StreamingResponse(
        _events(request, run_id, interval, max_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, run_id: uuid.UUID, interval: float, max_seconds: float) -> AsyncIterator[bytes]:
    pool = await state_of(request).db()
    deadline = time.monotonic() + max_seconds
    last, sent, quiet_since = None, 0, time.monotonic()
    while True:
        async with pool.connection() as conn:
            shown = await control.progress(conn, run_id)
        if shown is None:  # deleted meanwhile (retention removes finished runs only, so it had ended)
            yield _event("end", sent + 1, encode({"run_id": str(run_id), "status": "deleted"}))
            return
        snapshot = encode(shown)
        if snapshot != last:
            sent += 1
            last, quiet_since = snapshot, time.monotonic()
            yield _event("progress", sent, snapshot)
        if shown["run"]["status"] in control.FINISHED:
            yield _event("end", sent + 1, encode({"run_id": str(run_id), "status": shown["run"]["status"]}))
            return
        if time.monotonic() >= deadline:
            yield _event("timeout", sent + 1, encode({"run_id": str(run_id), "reconnect": True}))
            return
        if time.monotonic() - quiet_since > 15:
            quiet_since = time.monotonic()
            yield b": still running\n\n"  # a comment keeps proxies from closing an idle stream
        if await request.is_disconnected():
            return
        await asyncio.sleep(interval)


def _event(kind: str, number: int, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\nid: " + str(number).encode() + b"\ndata: " + data + b"\n\n"


@router.post("/{run_id}/retry", status_code=202, responses=_PROBLEMS, summary="Fetch a run's failed partitions again")
async def retry_run(request: Request, principal: AdminCaller, client: DurableClient, run_id: uuid.UUID) -> Response:
    run = await _run_or_404(request, run_id)
    if run["status"] not in control.FINISHED:
        raise _conflict(f"run {run_id} is {run['status']}", "Retry once it has finished.")
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        failed = await control.open_partition_letters(conn, run_id)
    if not failed:
        raise _conflict(f"run {run_id} has no open dead-lettered partitions", "Nothing to retry.")
    return await _replay(client, run_id, failed)


async def _replay(client: Any, run_id: uuid.UUID, partitions: int) -> Response:
    instance_id = f"replay-{run_id}-{uuid.uuid4().hex[:8]}"
    await client.start_new("sync_replay", instance_id, {"run_id": str(run_id)})
    body = {"run_id": str(run_id), "instance_id": instance_id, "partitions": partitions}
    return JsonResponse(body, status_code=202, headers={"Location": f"/api/v1/runs/{run_id}"})


@router.post("/{run_id}/cancel", responses=_PROBLEMS, summary="Stop a run: terminate its orchestration")
async def cancel_run(
    request: Request, principal: AdminCaller, client: DurableClient, run_id: uuid.UUID, body: CancelRun | None = None
) -> Response:
    reason = (body or CancelRun()).reason
    run = await _run_or_404(request, run_id)
    if run["status"] in control.FINISHED:
        raise _conflict(f"run {run_id} is {run['status']}", "Only an unfinished run can be cancelled.")
    if await _active(client, run["instance_id"]):
        await client.terminate(run["instance_id"], reason)
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        try:
            cancelled = await control.cancel(conn, run_id, reason)
        except control.RunStateConflict as exc:
            raise _conflict(str(exc), "Only an unfinished run can be cancelled.") from None
    return JsonResponse(cancelled)


@router.post("/{run_id}/resume", status_code=202, responses=_PROBLEMS, summary="Consolidate and finalize a stalled run")
async def resume_run(request: Request, principal: AdminCaller, client: DurableClient, run_id: uuid.UUID) -> Response:
    run = await _run_or_404(request, run_id)
    if not control.resumable(run):
        raise _conflict(f"run {run_id} is {run['status']}", "Only a run stopped in consolidation can be resumed.")
    if await _active(client, run["instance_id"]):
        raise _conflict(f"run {run_id} is still being driven by {run['instance_id']}", "Wait for it, or cancel it.")
    instance_id = f"resume-{run_id}-{uuid.uuid4().hex[:8]}"
    await client.start_new("sync_resume", instance_id, {"run_id": str(run_id)})
    body = {"run_id": str(run_id), "instance_id": instance_id}
    return JsonResponse(body, status_code=202, headers={"Location": f"/api/v1/runs/{run_id}"})


@letters.get("", responses=_PROBLEMS, summary="Dead letters, newest first")
async def list_dead_letters(
    request: Request,
    principal: AdminCaller,
    status: LetterStatus | None = None,
    run_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        rows = await control.list_dead_letters(conn, status, run_id, limit)
    return JsonResponse({"data": rows})


async def _letter_or_404(request: Request, letter_id: uuid.UUID) -> dict[str, Any]:
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        letter = await control.get_dead_letter(conn, letter_id)
    if letter is None:
        raise Problem(
            404, "unknown-dead-letter", "Unknown dead letter", f"No dead letter has id {letter_id}.", "List them."
        )
    return letter


@letters.post("/{letter_id}/replay", status_code=202, responses=_PROBLEMS, summary="Replay a dead letter's run")
async def replay_dead_letter(
    request: Request, principal: AdminCaller, client: DurableClient, letter_id: uuid.UUID
) -> Response:
    """A replay fetches every open dead-lettered partition of the letter's run again, into that run."""
    letter = await _letter_or_404(request, letter_id)
    if letter["status"] != "open" or letter["kind"] != "partition":
        raise _conflict(
            f"dead letter {letter_id} is a {letter['status']} {letter['kind']} letter",
            "Only open partition letters replay.",
        )
    run = await _run_or_404(request, letter["run_id"])
    if run["status"] not in control.FINISHED:
        raise _conflict(f"its run is {run['status']}", "Replay once the run has finished.")
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        failed = await control.open_partition_letters(conn, letter["run_id"])
    return await _replay(client, letter["run_id"], failed)


@letters.delete("/{letter_id}", responses=_PROBLEMS, summary="Purge an open dead letter (kept on record)")
async def purge_dead_letter(request: Request, principal: AdminCaller, letter_id: uuid.UUID) -> Response:
    await _letter_or_404(request, letter_id)
    pool = await state_of(request).db()
    async with pool.connection() as conn:
        try:
            purged = await control.purge_dead_letter(conn, letter_id)
        except control.RunStateConflict as exc:
            raise _conflict(str(exc), "Only open dead letters can be purged.") from None
    return JsonResponse(purged)
