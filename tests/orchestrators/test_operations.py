"""The operators' orchestrations (replay, resume), driven with a fake context: a refused change ends
them having called nothing else; an accepted one fetches only what it must, then consolidates."""

from __future__ import annotations

from fake_orchestration import FakeOrchestrationContext, run
from sync_activities import RUN_ID, activity_names, consolidating, descriptor, slice_of, sync_world

REFUSAL = "the run is still running; replay once it has finished"


def test_a_refused_replay_changes_nothing(orchestrators) -> None:
    refused = {"run_id": RUN_ID, "refused": REFUSAL, "partitions": []}
    world = sync_world(orchestrators, replay_run=lambda request: refused)
    result = run(orchestrators["sync_replay"], FakeOrchestrationContext(world, {"run_id": RUN_ID}))
    assert result == {"run_id": RUN_ID, "status": "refused", "reason": REFUSAL}
    assert activity_names(world) == ["replay_run"]


def test_a_replay_fetches_only_the_replayed_partitions_then_finalizes(orchestrators) -> None:
    world = sync_world(orchestrators, replay_run=lambda request: {**descriptor(), "partitions": [2, 5]})
    result = run(orchestrators["sync_replay"], FakeOrchestrationContext(world, {"run_id": RUN_ID}))
    assert [call.input["partition_no"] for call in world.calls_of("fetch_partition")] == [2, 5]
    assert result == {"run_id": RUN_ID, "status": "succeeded"}
    assert activity_names(world)[-1] == "finalize_run"


def test_a_refused_resume_changes_nothing(orchestrators) -> None:
    world = sync_world(orchestrators, resume_run=lambda request: {"run_id": RUN_ID, "refused": REFUSAL})
    result = run(orchestrators["sync_resume"], FakeOrchestrationContext(world, {"run_id": RUN_ID}))
    assert result == {"run_id": RUN_ID, "status": "refused", "reason": REFUSAL}
    assert activity_names(world) == ["resume_run"]


def test_a_resume_consolidates_until_done_and_finalizes_without_fetching(orchestrators) -> None:
    rounds = ([slice_of(10, more=True), slice_of(0, more=False)], [slice_of(3, more=False), slice_of(0, more=False)])
    world = sync_world(orchestrators, consolidate=consolidating(*rounds), resume_run=lambda request: descriptor())
    result = run(orchestrators["sync_resume"], FakeOrchestrationContext(world, {"run_id": RUN_ID}))
    assert activity_names(world) == ["resume_run", *["consolidate_feed"] * 4, "finalize_run"]
    assert result == {"run_id": RUN_ID, "status": "succeeded"}
