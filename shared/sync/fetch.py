"""Fetching one partition: page through its band, upsert raw rows, checkpoint in the same transaction.

Each page is applied in one transaction that writes its rows and rejects AND moves the partition's
`next_offset` from the offset the page was read at to the next one. The move is conditional on the
offset still being the one read, so a page applied twice (a retried or duplicated activity) is
applied once: the second transaction finds the checkpoint moved and rolls back. A restarted
partition resumes from its checkpoint. Only a page with zero items ends a partition (short pages
arrive mid-stream); a page cap stops a feed that never ends.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import psycopg
from psycopg_pool import ConnectionPool

from shared.feed.page import FeedPage
from shared.feed.source import FeedSource, PriceBand

log = logging.getLogger(__name__)


class PageCapReached(RuntimeError):
    """The partition kept returning items past its page cap."""


class PartitionMoved(RuntimeError):
    """Another worker applied this page first; re-read the checkpoint and go on from there."""


@dataclass(frozen=True)
class PartitionResult:
    partition_no: int
    status: str
    rows_fetched: int
    rows_rejected: int
    pages: int


# Created once per pooled connection and emptied by every commit: no catalogue churn per page.
_STAGE = """CREATE TEMP TABLE IF NOT EXISTS raw_stage (stone_id text, offer_id text, payload text,
                                                     payload_hash bytea) ON COMMIT DELETE ROWS"""

# One statement: upsert the raw rows and queue the new or changed ones for consolidation. Every
# part sees the table as it was, so `known` holds the hashes from before this page.
_UPSERT = """
WITH staged AS (
    SELECT DISTINCT ON (stone_id) stone_id, offer_id, payload, payload_hash FROM raw_stage ORDER BY stone_id
), known AS (
    SELECT s.stone_id, s.payload_hash, r.payload_hash AS stored_hash, r.stone_id IS NULL AS is_new
    FROM staged s LEFT JOIN raw_stones r ON r.feed = %(feed)s AND r.stone_id = s.stone_id
), upserted AS (
    INSERT INTO raw_stones AS r (feed, stone_id, offer_id, payload, payload_hash, first_seen_run_id,
                                 last_seen_run_id)
    SELECT %(feed)s, stone_id, offer_id, payload::jsonb, payload_hash, %(run)s, %(run)s FROM staged
    ON CONFLICT (feed, stone_id) DO UPDATE SET
        offer_id = EXCLUDED.offer_id,
        last_seen_run_id = EXCLUDED.last_seen_run_id,
        fetched_at = now(),
        -- Unchanged payloads are not rewritten, and not queued for consolidation.
        payload = CASE WHEN r.payload_hash = EXCLUDED.payload_hash THEN r.payload ELSE EXCLUDED.payload END,
        changed_at = CASE WHEN r.payload_hash = EXCLUDED.payload_hash THEN r.changed_at ELSE now() END,
        payload_hash = EXCLUDED.payload_hash
), queued AS (
    INSERT INTO raw_pending (feed, stone_id, payload_hash)
    SELECT %(feed)s, stone_id, payload_hash FROM known WHERE stored_hash IS DISTINCT FROM payload_hash
    ON CONFLICT (feed, stone_id) DO UPDATE SET payload_hash = EXCLUDED.payload_hash, changed_at = now()
)
SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new AND stored_hash <> payload_hash)
FROM known
"""


def fetch_partition(
    pool: ConnectionPool,
    source: FeedSource,
    run_id: uuid.UUID,
    partition_no: int,
    *,
    page_size: int,
    max_pages: int,
) -> PartitionResult:
    """Fetch a partition from its checkpoint to its end. Safe to run again at any point."""
    with pool.connection() as conn:
        state = _start(conn, run_id, partition_no)
    if state["status"] == "fetched":
        return _result(partition_no, state)
    band = PriceBand(state["dpc_from"], state["dpc_to"])
    offset, pages = state["next_offset"], state["pages"]
    while True:
        if pages >= max_pages:
            raise PageCapReached(f"partition {partition_no} still returned items after {pages} pages")
        page = source.page(band, offset, page_size, state["updated_from"])
        try:
            with pool.connection() as conn, conn.transaction():
                _apply_page(conn, source.feed, run_id, partition_no, page)
        except PartitionMoved:
            with pool.connection() as conn:
                state = _state(conn, run_id, partition_no)
            log.warning(
                "page already applied elsewhere; resuming from the checkpoint",
                extra={"run_id": str(run_id), "partition_no": partition_no, "page_offset": offset},
            )
            if state["status"] == "fetched":
                return _result(partition_no, state)
            offset, pages = state["next_offset"], state["pages"]
            continue
        pages += 1
        if page.is_end:
            with pool.connection() as conn:
                return _result(partition_no, _state(conn, run_id, partition_no))
        offset += page.received


def _apply_page(conn: psycopg.Connection, feed: str, run_id: uuid.UUID, partition_no: int, page: FeedPage) -> None:
    new = changed = 0
    # A page's rows and its checkpoint commit together, so a commit lost to a database crash loses
    # both and the page is simply fetched again: no need to wait for the WAL flush on every page.
    # The last page commits durably, which (WAL being sequential) makes every earlier page durable
    # before the partition reports itself fetched.
    if not page.is_end:
        conn.execute("SET LOCAL synchronous_commit = off")
    if page.items:
        conn.execute(_STAGE)
        with conn.cursor().copy("COPY raw_stage (stone_id, offer_id, payload, payload_hash) FROM STDIN") as copy:
            for item in page.items:
                copy.write_row((item.stone_id, item.offer_id, item.payload, item.payload_hash))
        new, changed = conn.execute(_UPSERT, {"feed": feed, "run": run_id}).fetchone()
    if page.rejects:
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO feed_rejects (run_id, partition_no, page_offset, item_index, stone_id, reason, payload)
                   VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT DO NOTHING""",
                [
                    (run_id, partition_no, page.offset, r.item_index, r.stone_id, r.reason, r.payload)
                    for r in page.rejects
                ],
            )
    moved = conn.execute(
        """UPDATE partitions SET next_offset = next_offset + %(received)s, pages = pages + 1,
                  rows_fetched = rows_fetched + %(valid)s, rows_rejected = rows_rejected + %(rejected)s,
                  rows_new = rows_new + %(new)s, rows_changed = rows_changed + %(changed)s,
                  status = CASE WHEN %(end)s THEN 'fetched' ELSE status END,
                  finished_at = CASE WHEN %(end)s THEN now() ELSE finished_at END,
                  updated_at = now()
           WHERE run_id = %(run)s AND partition_no = %(no)s AND next_offset = %(offset)s AND status = 'fetching'""",
        {
            "received": page.received,
            "valid": len(page.items),
            "rejected": len(page.rejects),
            "new": new,
            "changed": changed,
            "end": page.is_end,
            "run": run_id,
            "no": partition_no,
            "offset": page.offset,
        },
    ).rowcount
    if not moved:
        raise PartitionMoved(f"partition {partition_no} is no longer at offset {page.offset}")


def _start(conn: psycopg.Connection, run_id: uuid.UUID, partition_no: int) -> dict:
    conn.execute(
        """UPDATE partitions SET status = 'fetching', attempts = attempts + 1, last_error = NULL,
                  started_at = coalesce(started_at, now()), updated_at = now()
           WHERE run_id = %s AND partition_no = %s AND status <> 'fetched'""",
        (run_id, partition_no),
    )
    conn.commit()
    return _state(conn, run_id, partition_no)


def _state(conn: psycopg.Connection, run_id: uuid.UUID, partition_no: int) -> dict:
    row = conn.execute(
        """SELECT p.status, p.dpc_from, p.dpc_to, p.next_offset, p.pages, p.rows_fetched, p.rows_rejected,
                  r.updated_from
           FROM partitions p JOIN runs r USING (run_id) WHERE p.run_id = %s AND p.partition_no = %s""",
        (run_id, partition_no),
    ).fetchone()
    if row is None:
        raise LookupError(f"run {run_id} has no partition {partition_no}")
    keys = ("status", "dpc_from", "dpc_to", "next_offset", "pages", "rows_fetched", "rows_rejected", "updated_from")
    return dict(zip(keys, row, strict=True))


def _result(partition_no: int, state: dict) -> PartitionResult:
    return PartitionResult(partition_no, state["status"], state["rows_fetched"], state["rows_rejected"], state["pages"])


def record_failure(conn: psycopg.Connection, run_id: uuid.UUID, partition_no: int, error: str) -> None:
    """A partition gave up: keep its checkpoint (a replay resumes there) and its dead letter."""
    with conn.transaction():
        conn.execute(
            """UPDATE partitions SET status = 'dead_lettered', last_error = %s, updated_at = now()
               WHERE run_id = %s AND partition_no = %s AND status <> 'fetched'""",
            (error[:2000], run_id, partition_no),
        )
        # A failed replay puts its dead letter back in the open; otherwise one open letter per partition.
        reopened = conn.execute(
            """UPDATE dead_letters SET status = 'open', error = %s, attempts = attempts + 1
               WHERE run_id = %s AND partition_no = %s AND status = 'replaying'""",
            (error[:2000], run_id, partition_no),
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
            {"error": error[:2000], "run": run_id, "no": partition_no},
        )
