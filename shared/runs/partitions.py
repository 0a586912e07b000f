"""A run's partitions: every statement about the `partitions` table.

A partition is a contiguous band of price per carat that one fetch activity pages through. Its row is
the fetch's checkpoint (`next_offset`, moved in the same transaction as the page's rows), its progress
(pages, rows) and its status: pending -> fetching -> fetched, or dead_lettered once its retries ran
out (a replay puts it back to pending; `fetched` is final).
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from shared.planning.partitions import Partition

# What the run page, the event stream and `caratflow runs RUN_ID` show of each partition.
_LIST = """
SELECT partition_no, dpc_from, dpc_to, expected_count, status, next_offset, pages, rows_fetched, rows_rejected,
       rows_new, rows_changed, rows_duplicate, attempts, last_error, started_at, finished_at, updated_at
FROM partitions WHERE run_id = %s ORDER BY partition_no
"""

# What finalize counts into the run's summary. `fetched` is stones, as everywhere; partitions are named so.
_TOTALS = """
SELECT count(*) AS partitions,
       count(*) FILTER (WHERE status = 'fetched') AS fetched_partitions,
       count(*) FILTER (WHERE status IN ('failed', 'dead_lettered')) AS failed_partitions,
       coalesce(sum(rows_fetched), 0)::int AS fetched,
       coalesce(sum(rows_new), 0)::int AS new,
       coalesce(sum(rows_changed), 0)::int AS changed,
       coalesce(sum(rows_rejected), 0)::int AS rejected,
       coalesce(sum(pages), 0)::int AS pages
FROM partitions WHERE run_id = %s
"""

_STATE_KEYS = ("status", "dpc_from", "dpc_to", "next_offset", "pages", "rows_fetched", "rows_rejected", "updated_from")


def create(conn: psycopg.Connection, run_id: uuid.UUID, planned: list[Partition]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO partitions (run_id, partition_no, dpc_from, dpc_to, expected_count)
               VALUES (%s, %s, %s, %s, %s)""",
            [(run_id, p.partition_no, p.dpc_from, p.dpc_to, p.expected_count) for p in planned],
        )


def numbers(conn: psycopg.Connection, run_id: uuid.UUID) -> list[int]:
    rows = conn.execute("SELECT partition_no FROM partitions WHERE run_id = %s ORDER BY partition_no", (run_id,))
    return [n for (n,) in rows]


def list_partitions(conn: psycopg.Connection, run_id: uuid.UUID) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LIST, (run_id,)).fetchall()


async def alist_partitions(conn: AsyncConnection, run_id: uuid.UUID) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LIST, (run_id,))
        return await cur.fetchall()


def totals(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, int]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_TOTALS, (run_id,)).fetchone()
    assert row is not None  # an aggregate always answers
    return row


def claim(conn: psycopg.Connection, run_id: uuid.UUID, partition_no: int) -> dict[str, Any]:
    """Count an attempt at fetching the partition (unless fetched already) and return its checkpoint."""
    conn.execute(
        """UPDATE partitions SET status = 'fetching', attempts = attempts + 1, last_error = NULL,
                  started_at = coalesce(started_at, now()), updated_at = now()
           WHERE run_id = %s AND partition_no = %s AND status <> 'fetched'""",
        (run_id, partition_no),
    )
    conn.commit()
    return checkpoint(conn, run_id, partition_no)


def checkpoint(conn: psycopg.Connection, run_id: uuid.UUID, partition_no: int) -> dict[str, Any]:
    """Where the partition's fetch stands, with the run's `updated_from` that every page asks with."""
    row = conn.execute(
        """SELECT p.status, p.dpc_from, p.dpc_to, p.next_offset, p.pages, p.rows_fetched, p.rows_rejected,
                  r.updated_from
           FROM partitions p JOIN runs r USING (run_id) WHERE p.run_id = %s AND p.partition_no = %s""",
        (run_id, partition_no),
    ).fetchone()
    if row is None:
        raise LookupError(f"run {run_id} has no partition {partition_no}")
    return dict(zip(_STATE_KEYS, row, strict=True))


def advance(
    conn: psycopg.Connection,
    run_id: uuid.UUID,
    partition_no: int,
    *,
    offset: int,
    received: int,
    valid: int,
    rejected: int,
    is_end: bool,
) -> bool:
    """Move the checkpoint past a page read at `offset`; False if it is no longer there (applied already)."""
    return bool(
        conn.execute(
            """UPDATE partitions SET next_offset = next_offset + %(received)s, pages = pages + 1,
                      rows_fetched = rows_fetched + %(valid)s, rows_rejected = rows_rejected + %(rejected)s,
                      status = CASE WHEN %(end)s THEN 'fetched' ELSE status END,
                      finished_at = CASE WHEN %(end)s THEN now() ELSE finished_at END,
                      updated_at = now()
               WHERE run_id = %(run)s AND partition_no = %(no)s AND next_offset = %(offset)s
                 AND status = 'fetching'""",
            {
                "received": received,
                "valid": valid,
                "rejected": rejected,
                "end": is_end,
                "run": run_id,
                "no": partition_no,
                "offset": offset,
            },
        ).rowcount
    )


def count_writes(
    conn: psycopg.Connection, run_id: uuid.UUID, partition_no: int, *, new: int, changed: int, duplicates: int
) -> None:
    conn.execute(
        """UPDATE partitions SET rows_new = rows_new + %s, rows_changed = rows_changed + %s,
                  rows_duplicate = rows_duplicate + %s
           WHERE run_id = %s AND partition_no = %s""",
        (new, changed, duplicates, run_id, partition_no),
    )


def give_up(conn: psycopg.Connection, run_id: uuid.UUID, partition_no: int, error: str) -> None:
    """The partition's retries ran out: dead-lettered, its checkpoint kept (a replay resumes there)."""
    conn.execute(
        """UPDATE partitions SET status = 'dead_lettered', last_error = %s, updated_at = now()
           WHERE run_id = %s AND partition_no = %s AND status <> 'fetched'""",
        (error, run_id, partition_no),
    )


def reset_for_replay(conn: psycopg.Connection, run_id: uuid.UUID, replayed: list[int]) -> None:
    conn.execute(
        """UPDATE partitions SET status = 'pending'
           WHERE run_id = %s AND partition_no = ANY(%s) AND status <> 'fetched'""",
        (run_id, replayed),
    )
