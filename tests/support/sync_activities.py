"""Scripted answers of the sync activities, for driving the sync orchestrators with a fake context.

A run of four partitions by default, each fetching ROWS_PER_PARTITION stones unless it is listed as
failing; consolidation answers come round by round, one answer per consolidator.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

from fake_orchestration import Fakes, Orchestrator

Json = dict[str, Any]  # an activity's input or answer

RUN_ID = "0b7e3c52-5f7c-4a43-9d0a-3f1c2b9e8d71"
FEED = "nivoda-natural"
POLICY = {
    "batch_size": 2,
    "min_success_share": 0.75,
    "consolidators": 2,
    "fetch_attempts": 3,
    "fetch_retry_first_ms": 100,
}
ROWS_PER_PARTITION = 10


def descriptor(**policy: Any) -> Json:
    """What create_run, replay_run and resume_run hand the orchestrator: the run and its policy."""
    return {"run_id": RUN_ID, "feed": FEED, "kind": "full", "policy": {**POLICY, **policy}}


def fetching(failing: Collection[int]) -> Callable[[Json], Json]:
    """The fetch activity: every partition in `failing` fails its last attempt."""

    def fetch(request: Json) -> Json:
        number = request["partition_no"]
        if number in failing:
            raise RuntimeError(f"feed kept timing out on partition {number}")
        return {
            "partition_no": number,
            "status": "fetched",
            "rows_fetched": ROWS_PER_PARTITION,
            "rows_rejected": 0,
            "pages": 1,
        }

    return fetch


def slice_of(processed: int, *, more: bool) -> Json:
    """One consolidator's answer for one time slice."""
    return {
        "processed": processed,
        "catalogued": processed,
        "new": processed,
        "rejected": 0,
        "batches": 1,
        "more": more,
    }


def consolidating(*rounds: list[Json]) -> Callable[[Json], Json]:
    """The consolidate activity: each round's answers, one per consolidator, in the order they are called."""
    answers: Iterator[Json] = iter([answer for answers in rounds for answer in answers])

    def consolidate(request: Json) -> Json:
        answer = next(answers, None)
        assert answer is not None, "consolidate_feed called more often than the test scripted"
        return answer

    return consolidate


def sync_world(
    orchestrators: dict[str, Orchestrator],
    *,
    partitions: int = 4,
    failing: Collection[int] = (),
    consolidate: Callable[[Json], Any] | None = None,
    **activities: Callable[[Json], Any],
) -> Fakes:
    """Every sync activity answering as scripted; `activities` adds or replaces some by name."""
    return Fakes(
        activities={
            "create_run": lambda request: descriptor(),
            "plan_run": lambda request: {"partitions": list(range(partitions))},
            "fetch_partition": fetching(set(failing)),
            "dead_letter_partition": lambda request: {
                "partition_no": request["partition_no"],
                "status": "dead_lettered",
            },
            "consolidate_feed": consolidate or consolidating([slice_of(5, more=False), slice_of(0, more=False)]),
            "finalize_run": lambda request: {"run_id": request["run_id"], "status": "succeeded"},
            "fail_run": lambda request: {"run_id": request["run_id"], "status": "failed", "error": request["error"]},
            **activities,
        },
        orchestrators=orchestrators,
    )


def activity_names(world: Fakes) -> list[str]:
    """The activities called, in order."""
    return [call.name for call in world.calls if call.kind == "activity"]
