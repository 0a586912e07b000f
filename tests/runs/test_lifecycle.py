"""Run transitions against the embedded PostgreSQL: one active run per feed holds for operators' changes too."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared.planning.partitions import Partition
from shared.runs import dead_letters, lifecycle
from shared.runs.reads import load_run
from shared.runs.states import CONSOLIDATION_FAILED, RunAlreadyActive, RunStatus

FEED = "nivoda-natural"


def _run(conn, status: RunStatus | None = None, error: str | None = None) -> uuid.UUID:
    run_id = uuid.uuid4()
    lifecycle.create_run(
        conn, run_id=run_id, feed=FEED, kind="full", trigger="cli", instance_id=None, as_of=datetime.now(UTC)
    )
    lifecycle.save_plan(conn, run_id, [Partition(partition_no=0, dpc_from=0, dpc_to=None, expected_count=0)], {})
    if status is not None:
        lifecycle.set_status(conn, run_id, status, error=error)
    return run_id


def test_replay_and_resume_wait_for_the_feeds_other_run_and_change_nothing(pool) -> None:
    with pool.connection() as conn:
        replayable = _run(conn)
        dead_letters.dead_letter_partition(conn, replayable, 0, "gave up (test)")
        lifecycle.set_status(conn, replayable, "partially_succeeded")
        resumable = _run(conn, "failed", f"{CONSOLIDATION_FAILED}: test")
        busy = _run(conn)  # the feed's active run

        with pytest.raises(RunAlreadyActive, match="another run of this feed is active"):
            lifecycle.replay_run(conn, replayable)
        assert dead_letters.count_open(conn, replayable) == 1  # the letter was not taken into a replay
        assert load_run(conn, replayable).status == "partially_succeeded"
        with pytest.raises(RunAlreadyActive):
            lifecycle.resume_run(conn, resumable)
        assert load_run(conn, resumable).status == "failed"

        lifecycle.set_status(conn, busy, "cancelled")
        assert lifecycle.replay_run(conn, replayable) == [0]
        assert load_run(conn, replayable).status == "fetching"
        assert dead_letters.list_letters(conn, "replaying", replayable, 10)[0]["partition_no"] == 0


def test_a_run_is_created_once_and_an_incremental_run_without_a_watermark_runs_full(pool) -> None:
    with pool.connection() as conn:
        run_id, now = uuid.uuid4(), datetime.now(UTC)
        first = lifecycle.create_run(
            conn, run_id=run_id, feed=FEED, kind="incremental", trigger="timer", instance_id="i", as_of=now
        )
        again = lifecycle.create_run(
            conn, run_id=run_id, feed=FEED, kind="incremental", trigger="timer", instance_id="i", as_of=now
        )
        assert first == again
        assert first.kind == "full"
        assert first.status == "planning"
