"""The sync orchestrations: plan -> fan out partition fetches -> consolidate -> finalize.

Deterministic control flow only: ids, clocks and settings come from the context or from activity
results (which history records), never from the environment. The fan-out is two levels deep so no
history grows with the inventory: `sync_run` starts one `sync_fetch_batch` per batch of partitions,
each batch starts one `sync_fetch_partition` per partition, and that one calls the `fetch_partition`
activity with retries and turns a final failure into a dead letter instead of an exception.

Every input an orchestrator passes on goes through `carry`, which adds the run's correlation id and
this orchestration's trace context; orchestrators log through `replay_safe` loggers only, so a line
is written once however often the orchestrator replays (shared/telemetry/__init__.py).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrators.inputs import request_of
from orchestrators.retry import BackoffRetryOptions
from shared.runs.states import CONSOLIDATION_FAILED
from shared.telemetry.durable import carry, observed_orchestrator, replay_safe

bp = df.Blueprint()
log = logging.getLogger(__name__)

QUICK_RETRY = BackoffRetryOptions(first_retry_interval_ms=2000, max_attempts=3, backoff_coefficient=2)


@bp.orchestration_trigger(context_name="context")
@observed_orchestrator
def sync_run(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """One run of one feed. Input: {feed, kind, trigger, run_id, correlation_id, traceparent}; its
    instance id is the feed's (shared/runs/starts.py), so a feed runs one sync at a time."""
    request = request_of(context)
    olog = replay_safe(log, context)
    run: dict[str, Any] = yield context.call_activity(
        "create_run",
        carry(
            context, {**request, "instance_id": context.instance_id, "as_of": context.current_utc_datetime.isoformat()}
        ),
    )
    if "skipped" in run:
        olog.warning("run skipped", extra={"feed": request["feed"], "reason": run["skipped"]})
        return run
    olog.info("run started", extra={"feed": run["feed"], "kind": run["kind"], "trigger": request["trigger"]})
    plan = yield context.call_activity_with_retry("plan_run", QUICK_RETRY, carry(context, {"run_id": run["run_id"]}))
    olog.info("run planned", extra={"partitions": len(plan["partitions"])})
    return (yield from fetch_consolidate_finalize(context, run, plan["partitions"]))


def fetch_consolidate_finalize(
    context: df.DurableOrchestrationContext, run: dict[str, Any], partitions: list[int]
) -> Generator[Any, Any, dict[str, Any]]:
    """Fetch the partitions, then consolidate and finalize, unless too few partitions fetched.

    The custom status (what `get_status` shows while the run goes) counts partitions by outcome and
    the stones `fetched`: "fetched" always counts stones, as in the run's summary."""
    policy = run["policy"]
    olog = replay_safe(log, context)
    progress = {
        "run_id": run["run_id"],
        "feed": run["feed"],
        "stage": "fetching",
        "partitions": len(partitions),
        "fetched_partitions": 0,
        "failed_partitions": 0,
        "fetched": 0,
    }
    context.set_custom_status(progress)
    size = policy["batch_size"]
    batches = [partitions[i : i + size] for i in range(0, len(partitions), size)]
    pending = [
        context.call_sub_orchestrator(
            "sync_fetch_batch",
            carry(context, {"run_id": run["run_id"], "feed": run["feed"], "partitions": batch, "policy": policy}),
        )
        for batch in batches
    ]
    while pending:
        finished = yield context.task_any(pending)
        pending.remove(finished)
        for outcome in finished.result:
            if outcome["status"] == "fetched":
                progress["fetched_partitions"] += 1
                progress["fetched"] += outcome["rows_fetched"]
            else:
                progress["failed_partitions"] += 1
        context.set_custom_status(progress)
    olog.info(
        "partitions fetched",
        extra={
            "fetched_partitions": progress["fetched_partitions"],
            "failed_partitions": progress["failed_partitions"],
            "fetched": progress["fetched"],
        },
    )

    if partitions and progress["fetched_partitions"] / len(partitions) < policy["min_success_share"]:
        context.set_custom_status({**progress, "stage": "failed"})
        error = (
            f"only {progress['fetched_partitions']} of {len(partitions)} partitions fetched; "
            f"the policy needs {policy['min_success_share']:.0%}"
        )
        olog.error("run failed", extra={"error": error})
        failed: dict[str, Any] = yield context.call_activity(
            "fail_run", carry(context, {"run_id": run["run_id"], "error": error})
        )
        return failed

    context.set_custom_status({**progress, "stage": "consolidating"})
    try:
        yield from consolidate_rounds(context, run, policy)
    except Exception as failure:  # noqa: BLE001 - a consolidator out of retries: the run fails, visibly
        # Failing the run (not the orchestration) frees the feed for its next run, records the
        # consolidation_failed notification, and leaves the run resumable (POST .../resume).
        error = f"{CONSOLIDATION_FAILED}: {failure}"[:2000]
        olog.error("consolidation failed", extra={"error": error})
        context.set_custom_status({**progress, "stage": "failed"})
        failed = yield context.call_activity("fail_run", carry(context, {"run_id": run["run_id"], "error": error}))
        return failed
    context.set_custom_status({**progress, "stage": "finalizing"})
    # Finalize counts the run's outcome from the database, not from what the rounds returned.
    summary: dict[str, Any] = yield context.call_activity_with_retry(
        "finalize_run", QUICK_RETRY, carry(context, {"run_id": run["run_id"]})
    )
    context.set_custom_status({**progress, "stage": summary["status"]})
    olog.info("run finished", extra={"status": summary["status"]})
    return summary


def consolidate_rounds(
    context: df.DurableOrchestrationContext, run: dict[str, Any], policy: dict[str, Any]
) -> Generator[Any, Any, dict[str, int]]:
    """Fan out consolidators until the backlog is empty; each returns after a time slice."""
    totals: dict[str, int] = {}
    round_no = 0
    while True:
        workers = [
            context.call_activity_with_retry(
                "consolidate_feed",
                QUICK_RETRY,
                carry(
                    context,
                    {"run_id": run["run_id"], "feed": run["feed"], "worker": f"{run['run_id'][:8]}-r{round_no}-w{i}"},
                ),
            )
            for i in range(policy["consolidators"])
        ]
        results = yield context.task_all(workers)
        for result in results:
            for key, value in result.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + value
        replay_safe(log, context).info("consolidation round finished", extra={"round": round_no, **totals})
        if not any(result["more"] for result in results):
            return totals
        round_no += 1


@bp.orchestration_trigger(context_name="context")
@observed_orchestrator
def sync_fetch_batch(context: df.DurableOrchestrationContext) -> Generator[Any, Any, list[dict[str, Any]]]:
    """Fetch a batch of partitions in parallel. Never fails: failed partitions come back as such."""
    request = request_of(context)
    outcomes: list[dict[str, Any]] = yield context.task_all(
        [
            context.call_sub_orchestrator(
                "sync_fetch_partition",
                carry(
                    context,
                    {
                        "run_id": request["run_id"],
                        "feed": request["feed"],
                        "partition_no": number,
                        "policy": request["policy"],
                    },
                ),
            )
            for number in request["partitions"]
        ]
    )
    return outcomes


@bp.orchestration_trigger(context_name="context")
@observed_orchestrator
def sync_fetch_partition(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    """Fetch one partition with durable retries; after the last attempt it becomes a dead letter."""
    request = request_of(context)
    policy = request["policy"]
    retry = BackoffRetryOptions(
        first_retry_interval_ms=policy["fetch_retry_first_ms"],
        max_attempts=policy["fetch_attempts"],
        backoff_coefficient=2,
    )
    target = carry(
        context, {"run_id": request["run_id"], "feed": request["feed"], "partition_no": request["partition_no"]}
    )
    try:
        fetched: dict[str, Any] = yield context.call_activity_with_retry("fetch_partition", retry, target)
        return fetched
    except Exception as failure:  # noqa: BLE001 - the SDK raises plain Exception for a failed activity
        replay_safe(log, context).warning(
            "partition dead-lettered",
            extra={"partition_no": request["partition_no"], "attempts": policy["fetch_attempts"]},
        )
        yield context.call_activity("dead_letter_partition", {**target, "error": str(failure)[:2000]})
        return {"partition_no": request["partition_no"], "status": "dead_lettered", "rows_fetched": 0}
