"""Where runs are changed: every transition of a run's status, and the rules operators' changes obey.

The sync moves a run forward (create -> plan -> fetch -> consolidate -> finalize, or fail); operators
replay, resume and cancel. Each function may run more than once for the same run (activities run at
least once): creating a run twice leaves one, a plan is saved once, a finished run's summary is kept.
The rules for operators' changes are in states.py; they are applied here under the run's row lock, so
whichever path asked (an API route, the CLI, an orchestration started by hand) gets the same answer.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.notify.events import record_event
from shared.planning.partitions import Partition
from shared.runs import dead_letters, partitions
from shared.runs.reads import RUN_COLUMNS, Run, get_run, load_run
from shared.runs.states import (
    ACTIVE,
    Refusal,
    RunAlreadyActive,
    RunKind,
    RunStatus,
    UnknownRun,
    cancel_refusal,
    replay_refusal,
    resume_refusal,
)

log = logging.getLogger(__name__)

# An incremental run asks for stones updated since the watermark minus this, so that stones updated
# while the previous run was reading are not missed (the overlap the supplier's integrators use).
WATERMARK_MARGIN = timedelta(minutes=15)


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
        raise RunAlreadyActive(f"a run of {feed} is already active", "Watch it, or cancel it first.") from exc
    return load_run(conn, run_id)


def save_plan(conn: psycopg.Connection, run_id: uuid.UUID, planned: list[Partition], plan: dict[str, Any]) -> None:
    """Record the plan and its partitions once, and start fetching; a repeated call keeps the first plan."""
    with conn.transaction():
        updated = conn.execute(
            "UPDATE runs SET plan = %s, status = 'fetching' WHERE run_id = %s AND plan IS NULL",
            (Jsonb(plan), run_id),
        ).rowcount
        if updated:
            partitions.create(conn, run_id, planned)


def set_status(conn: psycopg.Connection, run_id: uuid.UUID, status: RunStatus, *, error: str | None = None) -> None:
    finished = status not in ACTIVE
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


def lock_for_finalize(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, Any]:
    """The run's start, the time now and its summary (set once finalized), under the run's row lock."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT started_at, now() AS finished_at, summary FROM runs WHERE run_id = %s FOR UPDATE", (run_id,)
        ).fetchone()
    if row is None:
        raise UnknownRun(f"no run {run_id}")
    return row


def close_run(conn: psycopg.Connection, run_id: uuid.UUID, summary: dict[str, Any]) -> None:
    """Finalize's last word: the run's outcome and summary (in the caller's transaction)."""
    conn.execute(
        "UPDATE runs SET status = %s, summary = %s, finished_at = now() WHERE run_id = %s",
        (summary["status"], Jsonb(summary), run_id),
    )


# --- operators' changes -------------------------------------------------------------------------------


def replay_refusal_for(conn: psycopg.Connection, run_id: uuid.UUID) -> Refusal | None:
    """Why the run cannot be replayed now (None: it can). Read without a lock: a prompt answer only."""
    run = get_run(conn, run_id)
    if run is None:
        raise UnknownRun(f"no run {run_id}")
    return replay_refusal(run_id, run.status, dead_letters.count_open(conn, run_id))


def replay_run(conn: psycopg.Connection, run_id: uuid.UUID) -> list[int]:
    """Put a finished run's open partition dead letters back to work; return their partition numbers.

    Refused (RunStateConflict) unless the replay rule allows it, checked under the run's row lock.
    """
    with conn.transaction():
        status, _ = _locked(conn, run_id)
        refusal = replay_refusal(run_id, status, dead_letters.count_open(conn, run_id))
        if refusal is not None:
            raise refusal.conflict()
        replayed = dead_letters.mark_replaying(conn, run_id)
        partitions.reset_for_replay(conn, run_id, replayed)
        _reopen(conn, run_id, "fetching", "Replay")
    return replayed


def resume_run(conn: psycopg.Connection, run_id: uuid.UUID) -> Run:
    """Put a run that stopped in consolidation (still marked so, or failed there) back to consolidating."""
    with conn.transaction():
        status, error = _locked(conn, run_id)
        refusal = resume_refusal(run_id, status, error)
        if refusal is not None:
            raise refusal.conflict()
        _reopen(conn, run_id, "consolidating", "Resume")
    return load_run(conn, run_id)


def _locked(conn: psycopg.Connection, run_id: uuid.UUID) -> tuple[str, str | None]:
    """The run's status and error under its row lock, which the change then holds until it commits."""
    row = conn.execute("SELECT status, error FROM runs WHERE run_id = %s FOR UPDATE", (run_id,)).fetchone()
    if row is None:
        raise UnknownRun(f"no run {run_id}")
    return row[0], row[1]


def _reopen(conn: psycopg.Connection, run_id: uuid.UUID, status: RunStatus, change: str) -> None:
    """Make the run active again, unless another run of its feed became active meanwhile."""
    try:
        with conn.transaction():
            conn.execute(
                "UPDATE runs SET status = %s, summary = NULL, finished_at = NULL, error = NULL WHERE run_id = %s",
                (status, run_id),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise RunAlreadyActive(
            "another run of this feed is active", f"{change} after it ends: one run per feed at a time."
        ) from exc


async def acancel_run(conn: AsyncConnection, run_id: uuid.UUID, reason: str) -> dict[str, Any]:
    """Mark an unfinished run cancelled (the caller terminates its orchestration); return the run."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT status FROM runs WHERE run_id = %s FOR UPDATE", (run_id,))
        row = await cur.fetchone()
        if row is None:
            raise UnknownRun(f"no run {run_id}")
        refusal = cancel_refusal(run_id, row["status"])
        if refusal is not None:
            raise refusal.conflict()
        await cur.execute(
            psycopg.sql.SQL(
                "UPDATE runs SET status = 'cancelled', error = %s, finished_at = now() WHERE run_id = %s RETURNING {}"
            ).format(RUN_COLUMNS),
            (reason, run_id),
        )
        cancelled = await cur.fetchone()
    assert cancelled is not None
    return cancelled
