"""The repricing orchestration: start the job (its target becomes the active version), then advance it
slice by slice until it has ended (succeeded, or cancelled and gone back), showing its progress.

The job's state lives in its row (shared/pricing/repricing.py), not in this orchestration: each
`advance_repricing` call applies batches from the job's checkpoint for a time slice and returns the
progress, so a replayed or restarted orchestration carries on where the database says, and the history
holds a dozen calls for a million stones. A cancel is asked for in the database and carried out by the
next slice. An activity out of retries fails the job (visibly, resumably) rather than the orchestration.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrators.sync_run import QUICK_RETRY
from shared.telemetry.durable import carry, observed_orchestrator, replay_safe

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.orchestration_trigger(context_name="context")
@observed_orchestrator
def pricing_reprice(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Input: {job_id, batch_size, slice_seconds, correlation_id, traceparent}; instance `reprice-<job id>`."""
    request: dict[str, Any] = dict(context.get_input() or {})
    olog = replay_safe(log, context)
    job: dict[str, Any] = {"job_id": request["job_id"]}
    try:
        job = yield context.call_activity_with_retry("start_repricing", QUICK_RETRY, carry(context, job))
        olog.info("repricing started", extra=_fields(job))
        while not job["finished"]:
            context.set_custom_status(job)
            job = yield context.call_activity_with_retry(
                "advance_repricing",
                QUICK_RETRY,
                carry(
                    context,
                    {
                        "job_id": request["job_id"],
                        "batch_size": request["batch_size"],
                        "slice_seconds": request["slice_seconds"],
                    },
                ),
            )
    except Exception as failure:  # noqa: BLE001 - the SDK raises plain Exception for a failed activity
        error = str(failure)[:2000]
        olog.error("repricing failed", extra={"job_id": request["job_id"], "error": error})
        job = yield context.call_activity_with_retry(
            "fail_repricing", QUICK_RETRY, carry(context, {"job_id": request["job_id"], "error": error})
        )
    context.set_custom_status(job)
    olog.info("repricing ended", extra=_fields(job))
    return job


def _fields(job: dict[str, Any]) -> dict[str, Any]:
    return {key: job.get(key) for key in ("job_id", "status", "target_version", "stones", "repriced")}
