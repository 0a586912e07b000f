"""The sync orchestrators' decisions, driven with a fake context: no database, no host, no feed.

What is decided here: whether enough partitions were fetched to consolidate, how many consolidation
rounds run and what they add up to, what a consolidator out of retries does to the run, and that a
partition whose fetch keeps failing becomes a dead letter instead of failing the run.
"""

from __future__ import annotations

from typing import Any

from fake_orchestration import FakeOrchestrationContext, Fakes, Orchestrator, run
from sync_activities import (
    FEED,
    POLICY,
    ROWS_PER_PARTITION,
    RUN_ID,
    Json,
    activity_names,
    consolidating,
    slice_of,
    sync_world,
)

from shared.runs.states import CONSOLIDATION_FAILED


def sync(world: Fakes, orchestrators: dict[str, Orchestrator]) -> tuple[Any, FakeOrchestrationContext]:
    request = {"feed": FEED, "kind": "full", "trigger": "cli", "run_id": RUN_ID}
    context = FakeOrchestrationContext(world, request, f"sync-{FEED}")
    return run(orchestrators["sync_run"], context), context


def test_enough_partitions_fetched_goes_on_to_consolidate_and_finalize(orchestrators) -> None:
    world = sync_world(orchestrators, partitions=4, failing={3})  # 3 of 4: the policy's 75 % exactly
    result, context = sync(world, orchestrators)
    assert result == {"run_id": RUN_ID, "status": "succeeded"}
    assert activity_names(world)[-3:] == ["consolidate_feed", "consolidate_feed", "finalize_run"]
    assert world.calls_of("fail_run") == []
    assert [call.input["partition_no"] for call in world.calls_of("fetch_partition")] == [0, 1, 2, 3]
    assert [call.input["partition_no"] for call in world.calls_of("dead_letter_partition")] == [3]
    fetched = next(status for status in context.custom_statuses if status["stage"] == "consolidating")
    assert (fetched["fetched_partitions"], fetched["failed_partitions"]) == (3, 1)
    assert fetched["fetched"] == 3 * ROWS_PER_PARTITION  # stones, as in the run's summary


def test_too_few_partitions_fetched_fails_the_run_without_consolidating(orchestrators) -> None:
    world = sync_world(orchestrators, partitions=4, failing={1, 2})  # 2 of 4 < 75 %
    result, context = sync(world, orchestrators)
    [failed] = world.calls_of("fail_run")
    assert failed.input["run_id"] == RUN_ID
    assert failed.input["error"] == "only 2 of 4 partitions fetched; the policy needs 75%"
    assert result == {"run_id": RUN_ID, "status": "failed", "error": failed.input["error"]}
    assert world.calls_of("consolidate_feed") == []
    assert world.calls_of("finalize_run") == []
    assert context.custom_statuses[-1]["stage"] == "failed"


def test_a_skipped_run_plans_nothing(orchestrators) -> None:
    world = sync_world(orchestrators, create_run=lambda request: {"skipped": "a run of this feed is active"})
    result, _ = sync(world, orchestrators)
    assert result == {"skipped": "a run of this feed is active"}
    assert activity_names(world) == ["create_run"]


def test_consolidation_rounds_repeat_while_any_consolidator_has_more(orchestrators) -> None:
    rounds = (
        [slice_of(100, more=True), slice_of(40, more=False)],
        [slice_of(30, more=False), slice_of(20, more=True)],  # one consolidator with more is enough
        [slice_of(7, more=False), slice_of(0, more=False)],
    )
    world = sync_world(orchestrators, consolidate=consolidating(*rounds))
    result, _ = sync(world, orchestrators)
    workers = [call.input["worker"] for call in world.calls_of("consolidate_feed")]
    assert len(workers) == 3 * POLICY["consolidators"]
    assert len(set(workers)) == len(workers)  # each consolidator of each round has its own name
    assert [worker.split("-")[1] for worker in workers] == ["r0", "r0", "r1", "r1", "r2", "r2"]
    assert result["status"] == "succeeded"
    assert activity_names(world)[-1] == "finalize_run"


def test_consolidation_totals_add_up_over_rounds_and_consolidators() -> None:
    from orchestrators.sync_run import consolidate_rounds

    rounds = ([slice_of(100, more=True), slice_of(40, more=False)], [slice_of(7, more=False), slice_of(3, more=False)])
    world = Fakes(activities={"consolidate_feed": consolidating(*rounds)})
    context = FakeOrchestrationContext(world, {"run_id": RUN_ID})
    totals = run(lambda c: consolidate_rounds(c, {"run_id": RUN_ID, "feed": FEED}, POLICY), context)
    assert totals == {"processed": 150, "catalogued": 150, "new": 150, "rejected": 0, "batches": 4}  # no "more"


def test_a_consolidator_out_of_retries_fails_the_run_resumably(orchestrators) -> None:
    def broken(request: Json) -> Json:
        raise RuntimeError("deadlock detected")

    world = sync_world(orchestrators, consolidate=broken)
    result, context = sync(world, orchestrators)
    [failed] = world.calls_of("fail_run")
    # The prefix is what marks the run resumable (POST .../resume) rather than failed for good.
    assert failed.input["error"].startswith(f"{CONSOLIDATION_FAILED}: ")
    assert "deadlock detected" in failed.input["error"]
    assert result["status"] == "failed"
    assert world.calls_of("finalize_run") == []
    assert all(call.retry is not None for call in world.calls_of("consolidate_feed"))  # retried before this
    assert context.custom_statuses[-1]["stage"] == "failed"


def test_a_partition_whose_fetch_fails_is_dead_lettered_instead_of_raising(orchestrators) -> None:
    world = sync_world(orchestrators, failing={7})
    request = {"run_id": RUN_ID, "feed": FEED, "partition_no": 7, "policy": POLICY}
    result = run(orchestrators["sync_fetch_partition"], FakeOrchestrationContext(world, request))
    assert result == {"partition_no": 7, "status": "dead_lettered", "rows_fetched": 0}
    [fetch] = world.calls_of("fetch_partition")
    assert fetch.retry.max_number_of_attempts == POLICY["fetch_attempts"]
    assert fetch.retry.first_retry_interval_in_milliseconds == POLICY["fetch_retry_first_ms"]
    [dead] = world.calls_of("dead_letter_partition")
    assert (dead.input["run_id"], dead.input["partition_no"]) == (RUN_ID, 7)
    assert "feed kept timing out on partition 7" in dead.input["error"]


def test_a_fetched_partition_is_not_dead_lettered(orchestrators) -> None:
    world = sync_world(orchestrators)
    request = {"run_id": RUN_ID, "feed": FEED, "partition_no": 2, "policy": POLICY}
    result = run(orchestrators["sync_fetch_partition"], FakeOrchestrationContext(world, request))
    assert (result["partition_no"], result["status"], result["rows_fetched"]) == (2, "fetched", ROWS_PER_PARTITION)
    assert world.calls_of("dead_letter_partition") == []
