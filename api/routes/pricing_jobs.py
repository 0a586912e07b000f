"""Repricing jobs and the pricing audit trail (pricing scope): list and show jobs, watch one (server-sent
events), cancel or resume it; list the audit trail with filters.

A job's state is its row (shared/pricing/repricing.py), which its orchestration's activities keep current,
so every route reads it there. A cancel is asked for in the row and carried out by the job's next slice
(the previous version is active again and the job reprices back): 202, and the job shows `cancelling`
until it is `cancelled`. A resume carries a failed job on from its checkpoint with a new start of its
orchestration (`reprice-<job id>`).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from api.deps import AppState, DurableClient, PricingCaller
from api.encoding import JsonResponse
from api.problems import Problem
from api.routes.pricing_calls import PROBLEMS, actor, call, job_view
from api.routes.pricing_models import INT_MAX
from api.streams import Look, event_stream
from shared.pricing import audit, repricing
from shared.pricing.charge import BIGINT_MAX
from shared.pricing.repricing_starts import start_repricing
from shared.runs.starts import is_running
from shared.text import SafeText

router = APIRouter(prefix="/api/v1/pricing", tags=["pricing"])


@router.get("/jobs", responses=PROBLEMS, summary="Repricing jobs, newest first")
async def get_jobs(state: AppState, caller: PricingCaller, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    return JsonResponse({"data": [job_view(job) for job in await call(state, repricing.list_jobs, limit)]})


@router.get("/jobs/{job_id}", responses=PROBLEMS, summary="One repricing job and its progress")
async def get_job(state: AppState, caller: PricingCaller, job_id: uuid.UUID) -> Response:
    return JsonResponse(job_view(await call(state, repricing.load_job, job_id)))


@router.get(
    "/jobs/{job_id}/events",
    responses={**PROBLEMS, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
    summary="A job's progress as server-sent events, until it ends",
)
async def get_job_events(
    request: Request,
    state: AppState,
    caller: PricingCaller,
    job_id: uuid.UUID,
    interval: Annotated[float, Query(ge=0.1, le=30)] = 1.0,
    max_seconds: Annotated[float, Query(ge=1, le=3600)] = 300,
) -> StreamingResponse:
    """`progress` whenever the job moves, `end` when it has ended (succeeded, failed or cancelled),
    `timeout` after max_seconds (reconnect to go on); as GET /api/v1/runs/{run_id}/events."""
    await call(state, repricing.load_job, job_id)

    async def look() -> Look:
        job = await call(state, repricing.load_job, job_id)
        return Look(job_view(job), job.status if job.finished else None)

    return event_stream(request, look, {"job_id": str(job_id)}, interval=interval, max_seconds=max_seconds)


@router.post("/jobs/{job_id}/cancel", status_code=202, responses=PROBLEMS, summary="Cancel a job: it goes back")
async def post_job_cancel(state: AppState, caller: PricingCaller, job_id: uuid.UUID) -> Response:
    job = await call(state, repricing.request_cancel, job_id, actor(caller).label)
    return JsonResponse(job_view(job), status_code=202, headers={"Location": f"/api/v1/pricing/jobs/{job_id}"})


@router.post("/jobs/{job_id}/resume", status_code=202, responses=PROBLEMS, summary="Carry a failed job on")
async def post_job_resume(state: AppState, caller: PricingCaller, client: DurableClient, job_id: uuid.UUID) -> Response:
    job = await call(state, repricing.load_job, job_id)
    refused = repricing.resume_refusal(job)
    if refused is None and job.instance_id and await is_running(client, job.instance_id):
        refused = f"repricing job {job_id} is still driven by {job.instance_id}"
    if refused is not None:
        raise Problem(409, "conflict", "Not allowed now", refused, "Resume a failed job once its orchestration ended.")
    resumed = await call(state, repricing.resume, job_id)
    try:
        await start_repricing(client, job_id)
    except Exception as exc:
        await call(state, repricing.fail, job_id, f"its orchestration did not start again: {exc}")
        raise
    return JsonResponse(job_view(resumed), status_code=202, headers={"Location": f"/api/v1/pricing/jobs/{job_id}"})


@router.get("/audit", responses=PROBLEMS, summary="The pricing audit trail, newest first, with filters")
async def get_audit(
    state: AppState,
    caller: PricingCaller,
    version: Annotated[int | None, Query(ge=1, le=INT_MAX)] = None,
    action: audit.Action | None = None,
    actor_name: Annotated[
        SafeText | None,
        Query(alias="actor", min_length=1, max_length=200, description="the API client, operator or component"),
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="recorded at or after (with a time zone)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="recorded before (with a time zone)")] = None,
    before: Annotated[int | None, Query(ge=1, le=BIGINT_MAX, description="page on: an audit_id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    query = audit.AuditQuery(
        version=version, action=action, actor=actor_name, since=since, until=until, before=before, limit=limit
    )
    entries = await call(state, audit.entries, query)
    return JsonResponse({"data": [entry.model_dump(mode="json") for entry in entries]})
