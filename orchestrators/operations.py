"""Orchestrations operators start by hand (api/routes/runs.py, the CLI): replaying a finished run's
dead-lettered partitions into it, and finishing a run whose consolidation stopped.

Their activities apply the rule of the change under the run's row lock; a refused change ends the
orchestration with `status: refused` and the reason, having changed nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrators.inputs import request_of
from orchestrators.sync_run import QUICK_RETRY, consolidate_rounds, fetch_consolidate_finalize
from shared.telemetry.durable import carry, observed_orchestrator, replay_safe

bp = df.Blueprint()
log = logging.getLogger(__name__)


def _refused(context: df.DurableOrchestrationContext, outcome: dict[str, Any]) -> dict[str, Any]:
    replay_safe(log, context).warning("change refused", extra={"reason": outcome["refused"]})
    return {"run_id": outcome["run_id"], "status": "refused", "reason": outcome["refused"]}


@bp.orchestration_trigger(context_name="context")
@observed_orchestrator
def sync_replay(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Replay a run's dead-lettered partitions into the same run. Input: {run_id}."""
    request = request_of(context)
    replayed = yield context.call_activity("replay_run", carry(context, {"run_id": request["run_id"]}))
    if "refused" in replayed:
        return _refused(context, replayed)
    replay_safe(log, context).info("dead letters replayed", extra={"partitions": len(replayed["partitions"])})
    return (yield from fetch_consolidate_finalize(context, replayed, replayed["partitions"]))


@bp.orchestration_trigger(context_name="context")
@observed_orchestrator
def sync_resume(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Consolidate a run's backlog and finalize it, for a run whose orchestration stopped in consolidation
    (its consolidators ran out of retries, or the orchestration was lost). Input: {run_id}."""
    request = request_of(context)
    run = yield context.call_activity("resume_run", carry(context, {"run_id": request["run_id"]}))
    if "refused" in run:
        return _refused(context, run)
    olog = replay_safe(log, context)
    olog.info("consolidation resumed", extra={"feed": run["feed"]})
    yield from consolidate_rounds(context, run, run["policy"])
    summary: dict[str, Any] = yield context.call_activity_with_retry(
        "finalize_run", QUICK_RETRY, carry(context, {"run_id": run["run_id"]})
    )
    olog.info("run finished", extra={"status": summary["status"]})
    return summary
