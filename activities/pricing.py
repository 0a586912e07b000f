"""The repricing job's activities: thin adapters from the orchestration's input (a job id, sizes) to
shared/pricing/repricing.py and repricing_batches.py, which hold the job's state under its row lock. Each
returns the job's progress (`Job.progress()`), which the orchestration shows as its custom status."""

from __future__ import annotations

import uuid
from typing import Any

import azure.durable_functions as df

from activities import deps
from shared.pricing import repricing, repricing_batches
from shared.telemetry import observed_activity

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
@observed_activity
def start_repricing(request: dict[str, Any]) -> dict[str, Any]:
    """Activate the job's target version (once). Input: {job_id}."""
    with deps.pool().connection() as conn:
        return repricing.start(conn, uuid.UUID(request["job_id"])).progress()


@bp.activity_trigger(input_name="request")
@observed_activity
def advance_repricing(request: dict[str, Any]) -> dict[str, Any]:
    """Apply the job's batches for one slice. Input: {job_id, batch_size, slice_seconds}."""
    job = repricing_batches.advance(
        deps.pool(),
        uuid.UUID(request["job_id"]),
        batch_size=request["batch_size"],
        max_seconds=request["slice_seconds"],
    )
    return job.progress()


@bp.activity_trigger(input_name="request")
@observed_activity
def fail_repricing(request: dict[str, Any]) -> dict[str, Any]:
    """Input: {job_id, error}."""
    with deps.pool().connection() as conn:
        return repricing.fail(conn, uuid.UUID(request["job_id"]), request["error"]).progress()
