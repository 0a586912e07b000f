"""Runs and their partitions in PostgreSQL: the sync's bookkeeping, all of it idempotent.

Every function here may run more than once for the same run (activities run at least once): creating
a run or its partitions twice leaves one of each, and status changes only move forward.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.notify.events import record_event
from shared.planning.partitions import Partition

log = logging.getLogger(__name__)
# How a run's error starts when its consolidators gave up; such a run can be resumed.
CONSOLIDATION_FAILED = "consolidation failed"

ACTIVE_STATUSES = ("pending", "planning", "fetching", "consolidating", "finalizing")
# An incremental run asks for stones updated since the watermark minus this, so that stones
# updated while the previous run was reading are not missed (nivoda-feed.md: 15 min).
WATERMARK_MARGIN = timedelta(minutes=15)

RunKind = Literal["full", "incremental"]


class RunAlreadyActive(Exception):
    """Another run of this feed is still active (one active run per feed)."""


@dataclass(frozen=True)
class Run:
    run_id: uuid.UUID
    feed: str
    kind: RunKind
    status: str
    updated_from: datetime | None
    as_of: datetime | None


def create_run(
    conn: psycopg.Connection,
    *,
    run_id: uuid.UUID,
    feed: str,
    kind: RunKind,
    trigger: str,
    instance_id: str | None,
    as_of: datetime,
) -> Run:
    """Create the run (or return it, if it exists). An incremental run of a feed never synced runs full."""
    existing = get_run(conn, run_id)
    if existing is not None:
        return existing
    updated_from = None
    if kind == "incremental":
        row = conn.execute("SELECT watermark FROM feed_state WHERE feed = %s", (feed,)).fetchone()
        if row is None or row[0] is None:
            kind = "full"  # nothing to be incremental from
        else:
            updated_from = row[0] - WATERMARK_MARGIN
    try:
        with conn.transaction():
            conn.execute(
                """INSERT INTO runs (run_id, feed, kind, status, trigger, instance_id, updated_from, as_of)
                   VALUES (%s, %s, %s, 'planning', %s, %s, %s, %s)""",
                (run_id, feed, kind, trigger, instance_id, updated_from, as_of),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise RunAlreadyActive(f"a run of {feed} is already active") from exc
    run = get_run(conn, run_id)
    assert run is not None
    return run


def get_run(conn: psycopg.Connection, run_id: uuid.UUID) -> Run | None:
    row = conn.execute(
        "SELECT run_id, feed, kind, status, updated_from, as_of FROM runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    return None if row is None else Run(*row)


def set_status(conn: psycopg.Connection, run_id: uuid.UUID, status: str, *, error: str | None = None) -> None:
    finished = status not in ACTIVE_STATUSES
    with conn.transaction():
        # The status before, under the row lock: a failure is reported once, by the change that made it.
        before = conn.execute("SELECT status, feed, kind FROM runs WHERE run_id = %s FOR UPDATE", (run_id,)).fetchone()
        conn.execute(
            """UPDATE runs SET status = %s, error = coalesce(%s, error),
                      finished_at = CASE WHEN %s THEN now() ELSE NULL END
               WHERE run_id = %s""",
            (status, error, finished, run_id),
        )
        if status == "failed" and before is not None and before[0] != "failed":
            previous, feed, kind = before
            # The "failed runs" alert (infra/bicep/modules/alerts) reads this line.
            log.error(
                "sync run failed",
                extra={"run_id": str(run_id), "feed": feed, "kind": kind, "previous_status": previous, "error": error},
            )
            record_event(
                conn,
                "consolidation_failed" if previous == "consolidating" else "run_failed",
                str(run_id),
                {"run_id": run_id, "feed": feed, "kind": kind, "previous_status": previous, "error": error},
            )


def save_plan(conn: psycopg.Connection, run_id: uuid.UUID, partitions: list[Partition], plan: dict[str, Any]) -> None:
    """Record the plan and its partitions once; a repeated call keeps the first plan."""
    with conn.transaction():
        updated = conn.execute(
            "UPDATE runs SET plan = %s, status = 'fetching' WHERE run_id = %s AND plan IS NULL",
            (Jsonb(plan), run_id),
        ).rowcount
        if updated:
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO partitions (run_id, partition_no, dpc_from, dpc_to, expected_count)
                       VALUES (%s, %s, %s, %s, %s)""",
                    [(run_id, p.partition_no, p.dpc_from, p.dpc_to, p.expected_count) for p in partitions],
                )


def partition_numbers(conn: psycopg.Connection, run_id: uuid.UUID) -> list[int]:
    return [
        n
        for (n,) in conn.execute(
            "SELECT partition_no FROM partitions WHERE run_id = %s ORDER BY partition_no", (run_id,)
        )
    ]


def partitions_of(conn: psycopg.Connection, run_id: uuid.UUID) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT partition_no, dpc_from, dpc_to, expected_count, status, next_offset, pages, rows_fetched,
                      rows_rejected, rows_new, rows_changed, attempts, last_error, started_at, finished_at
               FROM partitions WHERE run_id = %s ORDER BY partition_no""",
            (run_id,),
        ).fetchall()


def runs_of(conn: psycopg.Connection, feed: str | None, limit: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT run_id, feed, kind, status, trigger, started_at, finished_at, summary, error
               FROM runs WHERE (%(feed)s::text IS NULL OR feed = %(feed)s)
               ORDER BY started_at DESC LIMIT %(limit)s""",
            {"feed": feed, "limit": limit},
        ).fetchall()


def reopen_for_replay(conn: psycopg.Connection, run_id: uuid.UUID) -> list[int]:
    """Put a run's open partition dead letters back to work; return their partition numbers."""
    with conn.transaction():
        numbers = [
            n
            for (n,) in conn.execute(
                """UPDATE dead_letters SET status = 'replaying'
               WHERE run_id = %s AND kind = 'partition' AND status = 'open' RETURNING partition_no""",
                (run_id,),
            )
        ]
        if not numbers:
            return []
        conn.execute(
            """UPDATE partitions SET status = 'pending'
               WHERE run_id = %s AND partition_no = ANY(%s) AND status <> 'fetched'""",
            (run_id, numbers),
        )
        try:
            with conn.transaction():
                conn.execute(
                    """UPDATE runs SET status = 'fetching', summary = NULL, finished_at = NULL, error = NULL
                       WHERE run_id = %s""",
                    (run_id,),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise RunAlreadyActive("another run of this feed is active; replay after it ends") from exc
    return sorted(numbers)


def run_record(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT run_id, feed, kind, status, trigger, instance_id, updated_from, as_of, plan, started_at,
                      finished_at, summary, error FROM runs WHERE run_id = %s""",
            (run_id,),
        ).fetchone()


def reopen_for_resume(conn: psycopg.Connection, run_id: uuid.UUID) -> Run:
    """Put a run that stopped in consolidation (still marked so, or failed there) back to consolidating."""
    try:
        with conn.transaction():
            updated = conn.execute(
                """UPDATE runs SET status = 'consolidating', error = NULL, finished_at = NULL, summary = NULL
                   WHERE run_id = %s AND (status IN ('consolidating', 'finalizing')
                                          OR (status = 'failed' AND starts_with(error, %s)))""",
                (run_id, CONSOLIDATION_FAILED),
            ).rowcount
    except psycopg.errors.UniqueViolation as exc:
        raise RunAlreadyActive("another run of this feed is active; resume after it ends") from exc
    run = get_run(conn, run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    if not updated:
        raise ValueError(f"run {run_id} is {run.status}; only a run stopped in consolidation resumes")
    return run
