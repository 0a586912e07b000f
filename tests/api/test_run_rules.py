"""Every path that replays, resumes or cancels a run obeys the same rule (shared/runs/states.py).

The paths: the API's run route and dead-letter route, `caratflow admin` (through the API), the local
`caratflow dead-letters replay` (straight to the database and the local host), an orchestration started
by hand without asking first, and the lifecycle function the activities call. A refused change must
leave the run, its partitions and its dead letters exactly as they were.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from operator_api import admin_cli

from shared.planning.partitions import Partition
from shared.runs import dead_letters, lifecycle
from shared.runs.starts import REPLAY, RESUME, replay_instance_id, resume_instance_id, run_request
from shared.runs.states import RunStateConflict

FEED = "nivoda-natural"


def _state(database_url: str, run_id: uuid.UUID) -> tuple[Any, ...]:
    """Everything a replay, resume or cancel would change."""
    with psycopg.connect(database_url) as conn:
        run = conn.execute(
            "SELECT status, error, finished_at, summary FROM runs WHERE run_id = %s", (run_id,)
        ).fetchone()
        parts = conn.execute(
            "SELECT partition_no, status FROM partitions WHERE run_id = %s ORDER BY 1", (run_id,)
        ).fetchall()
        letters = conn.execute(
            "SELECT dead_letter_id, status FROM dead_letters WHERE run_id = %s ORDER BY 1", (run_id,)
        ).fetchall()
    return run, parts, letters


def _run_with_a_dead_letter(pool, status: str) -> tuple[uuid.UUID, str]:
    """A run of FEED with two partitions, one fetched and one dead-lettered, left in `status`."""
    run_id = uuid.uuid4()
    with pool.connection() as conn:
        lifecycle.create_run(
            conn, run_id=run_id, feed=FEED, kind="full", trigger="cli", instance_id=None, as_of=datetime.now(UTC)
        )
        planned = [
            Partition(partition_no=0, dpc_from=0, dpc_to=1000, expected_count=0),
            Partition(partition_no=1, dpc_from=1000, dpc_to=None, expected_count=0),
        ]
        lifecycle.save_plan(conn, run_id, planned, {})
        conn.execute("UPDATE partitions SET status = 'fetched' WHERE run_id = %s AND partition_no = 0", (run_id,))
        dead_letters.dead_letter_partition(conn, run_id, 1, "gave up (test)")
        if status != "fetching":
            conn.execute(
                "UPDATE runs SET status = %s, finished_at = now(), summary = '{}' WHERE run_id = %s", (status, run_id)
            )
        conn.commit()
        (letter,) = dead_letters.list_letters(conn, "open", run_id, 10)
    return run_id, str(letter["dead_letter_id"])


def _refused_http(call) -> None:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        call()
    assert refused.value.response.status_code == 409
    assert refused.value.response.headers["content-type"] == "application/problem+json"


def _orchestration_refuses(ops, name: str, instance_id: str, run_id: uuid.UUID) -> None:
    runtime = ops.runtime
    instance = runtime.client.start_new(name, instance_id, run_request(run_id))
    status = runtime.client.wait_for_completion(instance, timeout=60)
    assert status.runtime_status == "Completed", status.error
    assert status.output["status"] == "refused", status.output
    assert str(run_id) in status.output["reason"]


def test_replay_of_a_run_still_fetching_is_refused_on_every_path(
    ops, pool, database_url, settings, monkeypatch, capsys
) -> None:
    run_id, letter_id = _run_with_a_dead_letter(pool, "fetching")
    before = _state(database_url, run_id)
    assert before[0][0] == "fetching"
    assert before[2][0][1] == "open"

    _refused_http(lambda: ops.replay_run(str(run_id)))  # POST /api/v1/runs/{id}/replay
    _refused_http(lambda: ops.replay_dead_letter(letter_id))  # POST /api/v1/dead-letters/{id}/replay
    code, _ = admin_cli(ops, monkeypatch, capsys, "replay", str(run_id))
    assert code == 1
    code, _ = admin_cli(ops, monkeypatch, capsys, "replay-letter", letter_id)
    assert code == 1

    # The laptop CLI, which reads the database itself instead of calling the API.
    local = subprocess.run(
        [sys.executable, "-m", "cli.main", "dead-letters", "replay", str(run_id)],
        env={**os.environ, "DATABASE_URL": database_url, "SCAN_STORE_DIR": str(settings.scan_store_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert local.returncode == 1, local.stderr
    assert f"run {run_id} is fetching" in local.stderr

    # An orchestration started without asking, and the lifecycle function its activity calls.
    _orchestration_refuses(ops, REPLAY, replay_instance_id(run_id), run_id)
    with pool.connection() as conn, pytest.raises(RunStateConflict, match="is fetching"):
        lifecycle.replay_run(conn, run_id)

    assert _state(database_url, run_id) == before


def test_a_finished_run_without_open_letters_has_nothing_to_replay_on_any_path(
    ops, pool, database_url, monkeypatch, capsys
) -> None:
    run_id, letter_id = _run_with_a_dead_letter(pool, "partially_succeeded")
    with pool.connection() as conn:
        conn.execute("UPDATE dead_letters SET status = 'purged' WHERE run_id = %s", (run_id,))
    before = _state(database_url, run_id)
    _refused_http(lambda: ops.replay_run(str(run_id)))
    _refused_http(lambda: ops.replay_dead_letter(letter_id))
    code, _ = admin_cli(ops, monkeypatch, capsys, "replay", str(run_id))
    assert code == 1
    _orchestration_refuses(ops, REPLAY, replay_instance_id(run_id), run_id)
    with pool.connection() as conn, pytest.raises(RunStateConflict, match="no open dead-lettered"):
        lifecycle.replay_run(conn, run_id)
    assert _state(database_url, run_id) == before


def test_resume_and_cancel_of_a_finished_run_are_refused_on_every_path(
    ops, pool, database_url, monkeypatch, capsys
) -> None:
    run_id, _ = _run_with_a_dead_letter(pool, "succeeded")
    before = _state(database_url, run_id)

    _refused_http(lambda: ops.resume_run(str(run_id)))
    _refused_http(lambda: ops.cancel_run(str(run_id)))
    for action in ("resume", "cancel"):
        code, _ = admin_cli(ops, monkeypatch, capsys, action, str(run_id))
        assert code == 1, action
    _orchestration_refuses(ops, RESUME, resume_instance_id(run_id), run_id)
    with pool.connection() as conn, pytest.raises(RunStateConflict, match="is succeeded"):
        lifecycle.resume_run(conn, run_id)

    async def cancel() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await lifecycle.acancel_run(conn, run_id, "test")

    with pytest.raises(RunStateConflict, match="cannot be cancelled"):
        asyncio.run(cancel())
    assert _state(database_url, run_id) == before
