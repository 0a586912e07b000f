"""Events are recorded with the status change they report, in its transaction, and reach a webhook."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from notifications import deliver_until_settled
from webhooks import target

from shared.db.rows import one
from shared.notify.events import record_auth_blocked, record_event
from shared.notify.targets import EVENT_KINDS
from shared.planning.partitions import Partition
from shared.runs import lifecycle
from shared.sync.finalize import finalize_run


def _prepared_run(conn: psycopg.Connection, fetched: int, failed: int = 0) -> uuid.UUID:
    run = lifecycle.create_run(
        conn,
        run_id=uuid.uuid4(),
        feed=f"feed-{uuid.uuid4().hex[:8]}",  # one active run per feed: each run its own feed
        kind="full",
        trigger="cli",
        instance_id=None,
        as_of=datetime.now(UTC),
    )
    count = fetched + failed
    planned = [Partition(partition_no=n, dpc_from=n * 10, dpc_to=n * 10 + 10, expected_count=0) for n in range(count)]
    lifecycle.save_plan(conn, run.run_id, planned, {})
    conn.execute(
        "UPDATE partitions SET status = CASE WHEN partition_no < %s THEN 'fetched' ELSE 'dead_lettered' END "
        "WHERE run_id = %s",
        (fetched, run.run_id),
    )
    conn.commit()
    return run.run_id


def _events(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT event_kind, subject, details FROM notification_events ORDER BY event_id").fetchall()


def test_finalize_records_the_run_outcome_in_its_transaction(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        complete, partial, undone = _prepared_run(conn, 2), _prepared_run(conn, 2, failed=1), _prepared_run(conn, 1)
        summary = finalize_run(conn, complete)
        finalize_run(conn, complete)  # finalized again: no second event
        finalize_run(conn, partial)
        with conn.transaction(force_rollback=True):  # the surrounding transaction rolls back
            finalize_run(conn, undone)
        conn.commit()
        events = _events(conn)
        status = one(conn.execute("SELECT status FROM runs WHERE run_id = %s", (undone,)).fetchone())[0]
    assert [(kind, subject) for kind, subject, _ in events] == [
        ("run_succeeded", str(complete)),
        ("run_partially_succeeded", str(partial)),
    ]
    assert events[0][2] == json.loads(json.dumps(summary))
    assert status == "fetching"  # neither the outcome nor its event stayed


def test_a_failure_records_one_event_naming_what_failed(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        consolidating, fetching = _prepared_run(conn, 1), _prepared_run(conn, 1)
        lifecycle.set_status(conn, consolidating, "consolidating")
        lifecycle.set_status(conn, consolidating, "failed", error="consolidation kept failing")
        lifecycle.set_status(conn, consolidating, "failed", error="and again")  # a repeated activity
        lifecycle.set_status(conn, fetching, "failed", error="only 0 of 1 partitions fetched")
        conn.commit()
        events = _events(conn)
    assert [(kind, subject) for kind, subject, _ in events] == [
        ("consolidation_failed", str(consolidating)),
        ("run_failed", str(fetching)),
    ]
    assert events[0][2]["error"] == "consolidation kept failing"
    assert events[0][2]["previous_status"] == "consolidating"


def test_auth_blocked_is_recorded_once_per_caller_per_hour(database_url: str) -> None:
    async def block(subject: str, at: datetime) -> int | None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await record_auth_blocked(conn, subject, {"reason": "bad signature"}, now=at)

    at = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    first = asyncio.run(block("ip:203.0.113.7", at))
    again = asyncio.run(block("ip:203.0.113.7", at + timedelta(minutes=30)))
    other = asyncio.run(block("key:ck0123456789abcdef", at))
    later = asyncio.run(block("ip:203.0.113.7", at + timedelta(hours=1)))
    assert first is not None
    assert other is not None
    assert later is not None
    assert again is None


def test_event_kinds_agree_between_python_and_the_schema(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for kind in EVENT_KINDS:
            record_event(conn, kind, "x", {})  # the table's CHECK takes every kind
        with pytest.raises(ValueError, match="unknown event kind"):
            record_event(conn, "run_exploded", "x", {})  # type: ignore[arg-type]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO notification_events (event_kind, subject) VALUES ('run_exploded', 'x')")


def test_a_synced_run_notifies_its_webhook(run_sync, pool, webhook, notify_settings) -> None:
    summary = run_sync("nivoda-natural")
    deliver_until_settled(pool, notify_settings(target(webhook, "ops", "teams")))
    [request] = webhook.requests
    card = request["body"]["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Sync succeeded: nivoda-natural (full)"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["run_id"] == summary["run_id"]
    assert facts["fetched"] == str(summary["fetched"])
