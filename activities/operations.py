"""Activities of the orchestrations operators start by hand (orchestrators/operations.py).

Both apply the rule of their change under the run's row lock (shared/runs/lifecycle.py): a replay or
resume that the rule refuses (the run moved on since the operator asked, or the orchestration was
started without asking) returns `refused` with the reason instead of changing anything.
"""

from __future__ import annotations

import uuid
from typing import Any

import azure.durable_functions as df

from activities import deps
from activities.sync import run_descriptor
from shared.runs import lifecycle
from shared.runs.reads import load_run
from shared.runs.states import RunStateConflict
from shared.telemetry import observed_activity

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
@observed_activity
def replay_run(request: dict[str, Any]) -> dict[str, Any]:
    """Reopen a finished run for a dead-letter replay; the partitions to fetch again come back with it."""
    run_id = uuid.UUID(request["run_id"])
    with deps.pool().connection() as conn:
        try:
            replayed = lifecycle.replay_run(conn, run_id)
        except RunStateConflict as refused:
            return {"run_id": str(run_id), "refused": refused.detail, "partitions": []}
        run = load_run(conn, run_id)
    return {**run_descriptor(run), "partitions": replayed}


@bp.activity_trigger(input_name="request")
@observed_activity
def resume_run(request: dict[str, Any]) -> dict[str, Any]:
    """Reopen a run that stopped in consolidation and return its descriptor."""
    run_id = uuid.UUID(request["run_id"])
    with deps.pool().connection() as conn:
        try:
            run = lifecycle.resume_run(conn, run_id)
        except RunStateConflict as refused:
            return {"run_id": str(run_id), "refused": refused.detail}
    return run_descriptor(run)
