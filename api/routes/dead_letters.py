"""Operator endpoints for dead letters (admin scope): list, replay (with the rest of its run's open
letters, into that run) and purge (kept on record)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from psycopg import AsyncConnection

from api.deps import AdminCaller, Connection, DurableClient
from api.encoding import JsonResponse
from api.problems import Problem
from api.routes.runs import PROBLEMS, conflict, replay, run_or_404
from shared.runs import dead_letters
from shared.runs.states import DeadLetterStatus, RunStateConflict

router = APIRouter(prefix="/api/v1/dead-letters", tags=["operations"])


async def _letter_or_404(conn: AsyncConnection, letter_id: uuid.UUID) -> dict[str, Any]:
    letter = await dead_letters.aget_letter(conn, letter_id)
    if letter is None:
        raise Problem(
            404, "unknown-dead-letter", "Unknown dead letter", f"No dead letter has id {letter_id}.", "List them."
        )
    return letter


@router.get("", responses=PROBLEMS, summary="Dead letters, newest first")
async def get_dead_letters(
    conn: Connection,
    caller: AdminCaller,
    status: DeadLetterStatus | None = None,
    run_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    return JsonResponse({"data": await dead_letters.alist_letters(conn, status, run_id, limit)})


@router.post("/{letter_id}/replay", status_code=202, responses=PROBLEMS, summary="Replay a dead letter's run")
async def post_dead_letter_replay(
    conn: Connection, caller: AdminCaller, client: DurableClient, letter_id: uuid.UUID
) -> Response:
    """A replay fetches every open dead-lettered partition of the letter's run again, into that run."""
    letter = await _letter_or_404(conn, letter_id)
    refusal = dead_letters.letter_replay_refusal(letter)
    if refusal is not None:
        raise conflict(refusal)
    return await replay(conn, client, await run_or_404(conn, letter["run_id"]))


@router.delete("/{letter_id}", responses=PROBLEMS, summary="Purge an open dead letter (kept on record)")
async def delete_dead_letter(conn: Connection, caller: AdminCaller, letter_id: uuid.UUID) -> Response:
    await _letter_or_404(conn, letter_id)
    try:
        purged = await dead_letters.apurge(conn, letter_id)
    except RunStateConflict as exc:
        raise conflict(exc) from None
    return JsonResponse(purged)
