"""What operators see of runs and dead letters, and the few state changes they make by hand.

Async (the API's pool); the orchestrations themselves are started and stopped through a durable
client by the caller. Partition progress is read from `partitions`, which the fetch activities keep
current page by page, so it is live while a run is fetching.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from shared.sync.runs import CONSOLIDATION_FAILED

FINISHED = ("succeeded", "partially_succeeded", "failed", "cancelled")


def _columns(*names: str) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


_RUN_COLUMNS = _columns(
    "run_id", "feed", "kind", "status", "trigger", "instance_id", "updated_from", "as_of", "started_at",
    "finished_at", "summary", "error",
)  # fmt: skip
_LETTER_COLUMNS = _columns(
    "dead_letter_id", "run_id", "kind", "partition_no", "status", "attempts", "error", "created_at", "resolved_at"
)


def resumable(run: dict[str, Any]) -> bool:
    """A run stopped in consolidation: still marked so (its orchestration was lost) or failed there."""
    return run["status"] in ("consolidating", "finalizing") or (
        run["status"] == "failed" and (run["error"] or "").startswith(CONSOLIDATION_FAILED)
    )


class RunStateConflict(Exception):
    """The run or dead letter is not in a state that allows the change asked for."""


async def list_runs(conn: AsyncConnection, feed: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                """SELECT {} FROM runs
               WHERE (%(feed)s::text IS NULL OR feed = %(feed)s) AND (%(status)s::text IS NULL OR status = %(status)s)
               ORDER BY started_at DESC, run_id LIMIT %(limit)s"""
            ).format(_RUN_COLUMNS),
            {"feed": feed, "status": status, "limit": limit},
        )
        return await cur.fetchall()


async def get_run(conn: AsyncConnection, run_id: uuid.UUID) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.SQL("SELECT {} FROM runs WHERE run_id = %s").format(_RUN_COLUMNS), (run_id,))
        return await cur.fetchone()


async def progress(conn: AsyncConnection, run_id: uuid.UUID) -> dict[str, Any] | None:
    """The run with its partitions and their totals: what the run page and the event stream show."""
    run = await get_run(conn, run_id)
    if run is None:
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT partition_no, dpc_from, dpc_to, expected_count, status, next_offset, pages, rows_fetched,
                      rows_rejected, attempts, last_error, updated_at
               FROM partitions WHERE run_id = %s ORDER BY partition_no""",
            (run_id,),
        )
        partitions = await cur.fetchall()
        # The backlog is per feed (raw_pending holds the latest payload of each stone to consolidate).
        await cur.execute("SELECT count(*) AS backlog FROM raw_pending WHERE feed = %s", (run["feed"],))
        backlog = (await cur.fetchone())["backlog"]
    by_status: dict[str, int] = {}
    for row in partitions:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    totals = {
        "partitions": len(partitions),
        "by_status": by_status,
        "rows_fetched": sum(row["rows_fetched"] for row in partitions),
        "rows_expected": sum(row["expected_count"] or 0 for row in partitions),
        "consolidation_backlog": backlog,
    }
    return {"run": run, "totals": totals, "partitions": partitions}


async def cancel(conn: AsyncConnection, run_id: uuid.UUID, reason: str) -> dict[str, Any]:
    """Mark an unfinished run cancelled (the caller terminates its orchestration); return the run."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                """UPDATE runs SET status = 'cancelled', error = %s, finished_at = now()
               WHERE run_id = %s AND status <> ALL(%s) RETURNING {}"""
            ).format(_RUN_COLUMNS),
            (reason, run_id, list(FINISHED)),
        )
        row = await cur.fetchone()
    if row is None:
        raise RunStateConflict(await _why_not(conn, run_id, "cancelled"))
    return row


async def open_partition_letters(conn: AsyncConnection, run_id: uuid.UUID) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM dead_letters WHERE run_id = %s AND kind = 'partition' AND status = 'open'", (run_id,)
    )
    return (await cur.fetchone())[0]


async def list_dead_letters(
    conn: AsyncConnection, status: str | None, run_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                """SELECT {} FROM dead_letters
               WHERE (%(status)s::text IS NULL OR status = %(status)s) AND (%(run)s::uuid IS NULL OR run_id = %(run)s)
               ORDER BY created_at DESC, dead_letter_id DESC LIMIT %(limit)s"""
            ).format(_LETTER_COLUMNS),
            {"status": status, "run": run_id, "limit": limit},
        )
        return await cur.fetchall()


async def get_dead_letter(conn: AsyncConnection, letter_id: uuid.UUID) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL("SELECT {} FROM dead_letters WHERE dead_letter_id = %s").format(_LETTER_COLUMNS),
            (letter_id,),
        )
        return await cur.fetchone()


async def purge_dead_letter(conn: AsyncConnection, letter_id: uuid.UUID) -> dict[str, Any]:
    """Give up on an open dead letter: it stays on record as 'purged', never replayed."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            sql.SQL(
                """UPDATE dead_letters SET status = 'purged', resolved_at = now()
               WHERE dead_letter_id = %s AND status = 'open' RETURNING {}"""
            ).format(_LETTER_COLUMNS),
            (letter_id,),
        )
        row = await cur.fetchone()
    if row is None:
        letter = await get_dead_letter(conn, letter_id)
        state = "does not exist" if letter is None else f"is {letter['status']}"
        raise RunStateConflict(f"dead letter {letter_id} {state}; only open dead letters can be purged")
    return row


async def _why_not(conn: AsyncConnection, run_id: uuid.UUID, wanted: str) -> str:
    run = await get_run(conn, run_id)
    if run is None:
        return f"no run {run_id}"
    return f"run {run_id} is {run['status']}; it cannot be {wanted}"
