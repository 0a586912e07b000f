"""Activities of the operator orchestrations (orchestrators/operations.py)."""

from __future__ import annotations

import uuid

import azure.durable_functions as df

from activities import deps
from activities.sync import run_descriptor
from shared.sync import runs
from shared.telemetry import observed_activity

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
@observed_activity
def resume_run(request: dict) -> dict:
    """Reopen a run that stopped in consolidation and return its descriptor; a ValueError if it moved
    on meanwhile (the API checks first, so that is a race), RunAlreadyActive if its feed is busy."""
    with deps.pool().connection() as conn:
        run = runs.reopen_for_resume(conn, uuid.UUID(request["run_id"]))
    return run_descriptor(run)
