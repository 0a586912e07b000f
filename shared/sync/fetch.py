"""Fetching one partition: page through its band, upsert raw rows, checkpoint in the same transaction.

Each page is applied in one transaction that writes its rows and rejects AND moves the partition's
`next_offset` from the offset the page was read at to the next one. The move is conditional on the
offset still being the one read, so a page applied twice (a retried or duplicated activity) is
applied once: the second transaction finds the checkpoint moved and rolls back. A restarted
partition resumes from its checkpoint. Only a page with zero items ends a partition (short pages
arrive mid-stream); a page cap stops a feed that never ends.

Duplicates (a stone id served by two items of one run) are resolved by shared/sync/duplicates.py
before the page's winning items are written.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from shared.db.rows import one
from shared.feed.page import FeedPage
from shared.feed.source import FeedSource, PriceBand
from shared.runs import partitions
from shared.sync.bounds import MappingBounds
from shared.sync.duplicates import resolve

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
_STAGE = """CREATE TEMP TABLE IF NOT EXISTS raw_item_stage (stone_id text, offer_id text, payload text,
                payload_hash bytea, price numeric, item_index integer) ON COMMIT DELETE ROWS"""

# One statement: upsert the winning items (one per stone id) and queue the new or changed ones for
# consolidation. Every part sees the table as it was, so `known` holds the hashes from before this page.
_UPSERT = """
WITH known AS (
    SELECT s.stone_id, s.payload_hash, r.payload_hash AS stored_hash, r.stone_id IS NULL AS is_new,
           coalesce(r.last_seen_run_id = %(run)s, false) AS held_this_run
    FROM raw_item_stage s LEFT JOIN raw_stones r ON r.feed = %(feed)s AND r.stone_id = s.stone_id
), upserted AS (
    INSERT INTO raw_stones AS r (feed, stone_id, offer_id, payload, payload_hash, first_seen_run_id,
                                 last_seen_run_id, seen_price, seen_partition_no, seen_page_offset, seen_item_index)
    SELECT %(feed)s, stone_id, offer_id, payload::jsonb, payload_hash, %(run)s, %(run)s,
           price, %(partition)s, %(offset)s, item_index
    FROM raw_item_stage
    ON CONFLICT (feed, stone_id) DO UPDATE SET
        offer_id = EXCLUDED.offer_id,
        last_seen_run_id = EXCLUDED.last_seen_run_id,
        fetched_at = now(),
        -- Unchanged payloads are not rewritten, and not queued for consolidation.
        payload = CASE WHEN r.payload_hash = EXCLUDED.payload_hash THEN r.payload ELSE EXCLUDED.payload END,
        changed_at = CASE WHEN r.payload_hash = EXCLUDED.payload_hash THEN r.changed_at ELSE now() END,
        payload_hash = EXCLUDED.payload_hash,
        seen_price = EXCLUDED.seen_price,
        seen_partition_no = EXCLUDED.seen_partition_no,
        seen_page_offset = EXCLUDED.seen_page_offset,
        seen_item_index = EXCLUDED.seen_item_index
), queued AS (
    INSERT INTO raw_pending (feed, stone_id, payload_hash)
    SELECT %(feed)s, stone_id, payload_hash FROM known WHERE stored_hash IS DISTINCT FROM payload_hash
    ON CONFLICT (feed, stone_id) DO UPDATE SET payload_hash = EXCLUDED.payload_hash, changed_at = now()
)
-- A stone that an earlier item of this run brought in was counted new or changed then: a better item
-- replacing it within the run is neither.
SELECT count(*) FILTER (WHERE is_new),
       count(*) FILTER (WHERE NOT is_new AND NOT held_this_run AND stored_hash <> payload_hash)
FROM known
"""

# A listed stone whose latest item the feed sent unusable is not sold at its stale data: delisted with
# the reason, as consolidation delists a stone whose payload no longer maps (migration 0011), and
# relisted when a run sees it usable again (finalize). Unless this run already holds a usable item for
# it: then the reject is the lesser of two offers for one stone id, not the stone's description.
_DELIST_REJECTED = """
UPDATE diamonds d SET delisted_at = now(), updated_at = now(), delisted_reason = 'feed reject: ' || left(x.reason, 500)
FROM (SELECT DISTINCT ON (stone_id) stone_id, reason
      FROM unnest(%(ids)s::text[], %(reasons)s::text[]) AS x(stone_id, reason) ORDER BY stone_id) AS x
WHERE d.feed = %(feed)s AND d.stone_id = x.stone_id AND d.delisted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM raw_stones r
                  WHERE r.feed = d.feed AND r.stone_id = d.stone_id AND r.last_seen_run_id = %(run)s)
"""


def fetch_partition(
    pool: ConnectionPool,
    source: FeedSource,
    run_id: uuid.UUID,
    partition_no: int,
    *,
    page_size: int,
    max_pages: int,
    bounds: MappingBounds | None = None,
) -> PartitionResult:
    """Fetch a partition from its checkpoint to its end. Safe to run again at any point. `bounds` tell a
    plausible offer from an implausible one for the duplicate rule (default: the settings' defaults)."""
    bounds = bounds or MappingBounds.from_settings()
    with pool.connection() as conn:
        state = partitions.claim(conn, run_id, partition_no)
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
                _apply_page(conn, source.feed, run_id, partition_no, page, bounds)
        except PartitionMoved:
            with pool.connection() as conn:
                state = partitions.checkpoint(conn, run_id, partition_no)
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
                return _result(partition_no, partitions.checkpoint(conn, run_id, partition_no))
        offset += page.received


def _apply_page(
    conn: psycopg.Connection, feed: str, run_id: uuid.UUID, partition_no: int, page: FeedPage, bounds: MappingBounds
) -> None:
    # A page's rows and its checkpoint commit together, so a commit lost to a database crash loses
    # both and the page is simply fetched again: no need to wait for the WAL flush on every page.
    # The last page commits durably, which (WAL being sequential) makes every earlier page durable
    # before the partition reports itself fetched.
    if not page.is_end:
        conn.execute("SET LOCAL synchronous_commit = off")
    # The checkpoint moves first: a page applied twice stops here before writing anything, and the
    # partition row's lock keeps two appliers of one partition in step.
    moved = partitions.advance(
        conn,
        run_id,
        partition_no,
        offset=page.offset,
        received=page.received,
        valid=len(page.items),
        rejected=len(page.rejects),
        is_end=page.is_end,
    )
    if not moved:
        raise PartitionMoved(f"partition {partition_no} is no longer at offset {page.offset}")
    if page.items:
        new, changed, duplicates = _write_items(conn, feed, run_id, partition_no, page, bounds)
        partitions.count_writes(conn, run_id, partition_no, new=new, changed=changed, duplicates=duplicates)
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
        named = [r for r in page.rejects if r.stone_id is not None]
        if named:
            conn.execute(
                _DELIST_REJECTED,
                {"feed": feed, "run": run_id, "ids": [r.stone_id for r in named], "reasons": [r.reason for r in named]},
            )


def _write_items(
    conn: psycopg.Connection, feed: str, run_id: uuid.UUID, partition_no: int, page: FeedPage, bounds: MappingBounds
) -> tuple[int, int, int]:
    """Upsert the page's winning items, record its duplicates; (new, changed, duplicates recorded)."""
    winners, duplicates = resolve(conn, feed, run_id, partition_no, page, bounds)
    if not winners:
        return 0, 0, duplicates
    conn.execute(_STAGE)
    copy_sql = "COPY raw_item_stage (stone_id, offer_id, payload, payload_hash, price, item_index) FROM STDIN"
    with conn.cursor().copy(copy_sql) as copy:
        for winner in winners:
            item = winner.item
            assert item is not None
            copy.write_row(
                (item.stone_id, item.offer_id, item.payload, item.payload_hash, winner.price, winner.position[2])
            )
    params = {"feed": feed, "run": run_id, "partition": partition_no, "offset": page.offset}
    new, changed = one(conn.execute(_UPSERT, params).fetchone())
    return new, changed, duplicates


def _result(partition_no: int, state: dict[str, Any]) -> PartitionResult:
    return PartitionResult(partition_no, state["status"], state["rows_fetched"], state["rows_rejected"], state["pages"])
