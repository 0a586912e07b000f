"""Orchestrations operators start by hand (api/routes/runs.py): finishing a run whose consolidation
stopped. Replaying dead letters is `sync_replay` in sync_run.py, which the sync itself shares."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrators.sync_run import QUICK_RETRY, consolidate_rounds
from shared.telemetry import carry, observed_orchestrator, replay_safe

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.orchestration_trigger(context_name="context")
@observed_orchestrator
def sync_resume(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict]:
    """Consolidate a run's backlog and finalize it, for a run whose orchestration stopped in consolidation
    (its consolidators ran out of retries, or the orchestration was lost). Input: {run_id}."""
    request = context.get_input()
    run = yield context.call_activity("resume_run", carry(context, {"run_id": request["run_id"]}))
    olog = replay_safe(log, context)
    olog.info("consolidation resumed", extra={"feed": run["feed"]})
    consolidation = yield from consolidate_rounds(context, run, run["policy"])
    summary = yield context.call_activity_with_retry(
        "finalize_run", QUICK_RETRY, carry(context, {"run_id": run["run_id"], "consolidation": consolidation})
    )
    olog.info("run finished", extra={"status": summary["status"]})
    return summary
