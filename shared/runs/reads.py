"""What callers read of runs: the identity activities drive a run by, the records operators see.

Sync for the activities and the CLI (psycopg's pool), async for the API (its async pool); each pair
reads with one statement.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from shared.runs import partitions
from shared.runs.states import RunKind, RunStatus, UnknownRun


@dataclass(frozen=True)
class Run:
    """What an activity needs to know of the run it works for."""

    run_id: uuid.UUID
    feed: str
    kind: RunKind
    status: RunStatus
    updated_from: datetime | None
    as_of: datetime | None


RUN_COLUMNS = sql.SQL(", ").join(
    map(
        sql.Identifier,
        (
            "run_id", "feed", "kind", "status", "trigger", "instance_id", "updated_from", "as_of", "plan",
            "started_at", "finished_at", "summary", "error",
        ),
    )
)  # fmt: skip
_RECORD = sql.SQL("SELECT {} FROM runs WHERE run_id = %s").format(RUN_COLUMNS)
_LIST = sql.SQL(
    """SELECT {} FROM runs
       WHERE (%(feed)s::text IS NULL OR feed = %(feed)s) AND (%(status)s::text IS NULL OR status = %(status)s)
       ORDER BY started_at DESC, run_id LIMIT %(limit)s"""
).format(RUN_COLUMNS)
# The backlog is per feed (raw_pending holds the latest payload of each stone to consolidate).
_BACKLOG = "SELECT count(*) FROM raw_pending WHERE feed = %s"


def get_run(conn: psycopg.Connection, run_id: uuid.UUID) -> Run | None:
    row = conn.execute(
        "SELECT run_id, feed, kind, status, updated_from, as_of FROM runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    return None if row is None else Run(*row)


def load_run(conn: psycopg.Connection, run_id: uuid.UUID) -> Run:
    run = get_run(conn, run_id)
    if run is None:
        raise UnknownRun(f"no run {run_id}")
    return run


def run_record(conn: psycopg.Connection, run_id: uuid.UUID) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_RECORD, (run_id,)).fetchone()


async def arun_record(conn: AsyncConnection, run_id: uuid.UUID) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_RECORD, (run_id,))
        return await cur.fetchone()


def list_runs(
    conn: psycopg.Connection, feed: str | None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LIST, {"feed": feed, "status": status, "limit": limit}).fetchall()


async def alist_runs(conn: AsyncConnection, feed: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LIST, {"feed": feed, "status": status, "limit": limit})
        return await cur.fetchall()


async def aprogress(conn: AsyncConnection, run_id: uuid.UUID) -> dict[str, Any] | None:
    """The run with its partitions and their totals: what the run page and the event stream show."""
    run = await arun_record(conn, run_id)
    if run is None:
        return None
    rows = await partitions.alist_partitions(conn, run_id)
    backlog = await (await conn.execute(_BACKLOG, (run["feed"],))).fetchone()
    assert backlog is not None
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    totals = {
        "partitions": len(rows),
        "by_status": by_status,
        "rows_fetched": sum(row["rows_fetched"] for row in rows),
        "rows_expected": sum(row["expected_count"] or 0 for row in rows),
        "consolidation_backlog": backlog[0],
    }
    return {"run": run, "totals": totals, "partitions": rows}
