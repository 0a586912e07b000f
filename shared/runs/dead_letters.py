"""Dead letters: every statement about the `dead_letters` table.

A partition whose fetch ran out of retries opens a dead letter (one per partition while it is open or
replaying). A replay marks a run's open letters `replaying` and fetches their partitions again: a
partition that then fetches makes its letter `replayed` (finalize), one that fails again re-opens it.
An operator may instead purge an open letter: it stays on record as `purged` and is never replayed.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from shared.runs import partitions
from shared.runs.states import Refusal, RunStateConflict

log = logging.getLogger(__name__)

_COLUMNS = sql.SQL(", ").join(
    map(
        sql.Identifier,
        (
            "dead_letter_id",
            "run_id",
            "kind",
            "partition_no",
            "status",
            "attempts",
            "error",
            "created_at",
            "resolved_at",
        ),
    )
)
_LIST = sql.SQL(
    """SELECT {} FROM dead_letters
       WHERE (%(status)s::text IS NULL OR status = %(status)s) AND (%(run)s::uuid IS NULL OR run_id = %(run)s)
       ORDER BY created_at DESC, dead_letter_id DESC LIMIT %(limit)s"""
).format(_COLUMNS)
_OPEN_COUNT = "SELECT count(*) FROM dead_letters WHERE run_id = %s AND kind = 'partition' AND status = 'open'"


def dead_letter_partition(conn: psycopg.Connection, run_id: uuid.UUID, partition_no: int, error: str) -> None:
    """A partition gave up: dead-letter it, and open its letter (or re-open the one a replay was working)."""
    error = error[:2000]
    with conn.transaction():
        partitions.give_up(conn, run_id, partition_no, error)
        reopened = conn.execute(
            """UPDATE dead_letters SET status = 'open', error = %s, attempts = attempts + 1
               WHERE run_id = %s AND partition_no = %s AND status = 'replaying'""",
            (error, run_id, partition_no),
        ).rowcount
        # The "dead letter opened" alert (infra/bicep/modules/alerts) counts these lines.
        log.warning(
            "dead letter opened",
            extra={
                "run_id": str(run_id),
                "partition_no": partition_no,
                "error": error[:500],
                "reopened": bool(reopened),
            },
        )
        if reopened:
            return
        conn.execute(
            """INSERT INTO dead_letters (run_id, kind, partition_no, input, error, attempts)
               SELECT p.run_id, 'partition', p.partition_no, jsonb_build_object('partition_no', p.partition_no),
                      %(error)s, greatest(p.attempts, 1)
               FROM partitions p
               WHERE p.run_id = %(run)s AND p.partition_no = %(no)s AND NOT EXISTS (
                   SELECT 1 FROM dead_letters d WHERE d.run_id = p.run_id AND d.partition_no = p.partition_no
                   AND d.status IN ('open', 'replaying'))""",
            {"error": error, "run": run_id, "no": partition_no},
        )


def count_open(conn: psycopg.Connection, run_id: uuid.UUID) -> int:
    row = conn.execute(_OPEN_COUNT, (run_id,)).fetchone()
    assert row is not None
    count: int = row[0]
    return count


async def acount_open(conn: AsyncConnection, run_id: uuid.UUID) -> int:
    row = await (await conn.execute(_OPEN_COUNT, (run_id,))).fetchone()
    assert row is not None
    count: int = row[0]
    return count


def mark_replaying(conn: psycopg.Connection, run_id: uuid.UUID) -> list[int]:
    """Take a run's open partition letters into a replay; return their partition numbers."""
    rows = conn.execute(
        """UPDATE dead_letters SET status = 'replaying'
           WHERE run_id = %s AND kind = 'partition' AND status = 'open' RETURNING partition_no""",
        (run_id,),
    )
    return sorted(n for (n,) in rows)


def mark_replayed(conn: psycopg.Connection, run_id: uuid.UUID) -> None:
    """Letters whose partition the replay fetched are done."""
    conn.execute(
        """UPDATE dead_letters d SET status = 'replayed', resolved_at = now()
           FROM partitions p
           WHERE d.run_id = %(run)s AND d.status = 'replaying' AND p.run_id = d.run_id
             AND p.partition_no = d.partition_no AND p.status = 'fetched'""",
        {"run": run_id},
    )


def list_letters(
    conn: psycopg.Connection, status: str | None, run_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LIST, {"status": status, "run": run_id, "limit": limit}).fetchall()


async def alist_letters(
    conn: AsyncConnection, status: str | None, run_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LIST, {"status": status, "run": run_id, "limit": limit})
        return await cur.fetchall()


async def aget_letter(conn: AsyncConnection, letter_id: uuid.UUID) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL("SELECT {} FROM dead_letters WHERE dead_letter_id = %s").format(_COLUMNS), (letter_id,)
        )
        return await cur.fetchone()


def letter_replay_refusal(letter: dict[str, Any]) -> Refusal | None:
    """A letter replays (with the rest of its run's open letters) only while open; its run's rule applies too."""
    if letter["status"] != "open" or letter["kind"] != "partition":
        return Refusal(
            f"dead letter {letter['dead_letter_id']} is a {letter['status']} {letter['kind']} letter",
            "Only open partition letters replay.",
        )
    return None


async def apurge(conn: AsyncConnection, letter_id: uuid.UUID) -> dict[str, Any]:
    """Give up on an open dead letter: it stays on record as 'purged', never replayed."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                """UPDATE dead_letters SET status = 'purged', resolved_at = now()
                   WHERE dead_letter_id = %s AND status = 'open' RETURNING {}"""
            ).format(_COLUMNS),
            (letter_id,),
        )
        row = await cur.fetchone()
    if row is None:
        letter = await aget_letter(conn, letter_id)
        state = "does not exist" if letter is None else f"is {letter['status']}"
        raise RunStateConflict(
            f"dead letter {letter_id} {state}; only open dead letters can be purged",
            "Only open dead letters can be purged.",
        )
    return row
