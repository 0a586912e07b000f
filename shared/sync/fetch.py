"""Fetching one partition: page through its band, upsert raw rows, checkpoint in the same transaction.

Each page is applied in one transaction that writes its rows and rejects AND moves the partition's
`next_offset` from the offset the page was read at to the next one. The move is conditional on the
offset still being the one read, so a page applied twice (a retried or duplicated activity) is
applied once: the second transaction finds the checkpoint moved and rolls back. A restarted
partition resumes from its checkpoint. Only a page with zero items ends a partition (short pages
arrive mid-stream); a page cap stops a feed that never ends.

Duplicates. A stone id served by two items of one run (in one page, or across pages and partitions)
keeps ONE item in raw_stones; every other item is a row of `feed_duplicates` naming the winner by
position (partition, page offset, item index). The rule, as the peers' lowest-price dedupe: the
lowest plausible price wins (a missing price, or one outside the plausibility bounds of
shared/sync/bounds.py, ranks last: `seen_price` and the duplicate's `price_cents` are then NULL),
then the lowest offer id, then the lowest payload hash, then the lowest position (identical items).
It depends only on the items, so the winner is the same whatever order pages
and partitions are applied, retried or resumed in. Each raw row remembers which item of its
`last_seen_run_id` it holds (price and position), so a later item is compared with it; a page's
stone ids are advisory-locked so two partitions compare in turn. A displaced winner becomes a
duplicate, and earlier losers are renamed to the new winner. An item at the position the raw row
already holds is that same item (a page applied again), never its own duplicate.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import psycopg
from psycopg_pool import ConnectionPool

from shared.feed.page import FeedItem, FeedPage
from shared.feed.source import FeedSource, PriceBand
from shared.sync.bounds import MappingBounds

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

# Serialises the pages (of any partition) that carry the same stone ids, so each compares its items
# with the item a raw row holds after the other committed. Locks are taken in key order: no deadlock.
_LOCK_CLASS = 0x11D0  # the advisory-lock namespace of duplicate resolution (first of the two int keys)
_LOCK_STONES = """
SELECT pg_advisory_xact_lock(%(class)s, k)
FROM (SELECT DISTINCT hashtext(%(feed)s || '/' || s) AS k FROM unnest(%(ids)s::text[]) AS s ORDER BY k OFFSET 0) AS keys
"""

# The items of this run that raw rows already hold for the page's stone ids.
_HELD = """
SELECT stone_id, seen_price, offer_id, payload_hash, seen_partition_no, seen_page_offset, seen_item_index
FROM raw_stones
WHERE feed = %(feed)s AND stone_id = ANY(%(ids)s) AND last_seen_run_id = %(run)s AND seen_partition_no IS NOT NULL
"""

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

# A raw row's item that an item of this page beats: recorded before the upsert overwrites it.
# Recording a duplicate again (the same position) only renames its winner.
_DISPLACE = """
INSERT INTO feed_duplicates (run_id, feed, partition_no, page_offset, item_index, stone_id, offer_id, price_cents,
    payload_hash, payload, winner_partition_no, winner_page_offset, winner_item_index, winner_offer_id)
SELECT %(run)s, r.feed, r.seen_partition_no, r.seen_page_offset, r.seen_item_index, r.stone_id, r.offer_id,
       r.seen_price, r.payload_hash, r.payload, w.partition_no, w.page_offset, w.item_index, w.offer_id
FROM raw_stones r
JOIN unnest(%(stones)s::text[], %(w_partition)s::int[], %(w_offset)s::int[], %(w_index)s::int[],
            %(w_offer)s::text[]) AS w(stone_id, partition_no, page_offset, item_index, offer_id)
  ON r.stone_id = w.stone_id
WHERE r.feed = %(feed)s
ON CONFLICT (run_id, partition_no, page_offset, item_index) DO UPDATE SET
    winner_partition_no = EXCLUDED.winner_partition_no, winner_page_offset = EXCLUDED.winner_page_offset,
    winner_item_index = EXCLUDED.winner_item_index, winner_offer_id = EXCLUDED.winner_offer_id
"""

_LOSE = """
INSERT INTO feed_duplicates (run_id, feed, partition_no, page_offset, item_index, stone_id, offer_id, price_cents,
    payload_hash, payload, winner_partition_no, winner_page_offset, winner_item_index, winner_offer_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s)
ON CONFLICT (run_id, partition_no, page_offset, item_index) DO UPDATE SET
    winner_partition_no = EXCLUDED.winner_partition_no, winner_page_offset = EXCLUDED.winner_page_offset,
    winner_item_index = EXCLUDED.winner_item_index, winner_offer_id = EXCLUDED.winner_offer_id
"""

# Earlier losers of a stone whose winner this page replaced name the new winner.
_RENAME_WINNER = """
UPDATE feed_duplicates d SET winner_partition_no = w.partition_no, winner_page_offset = w.page_offset,
       winner_item_index = w.item_index, winner_offer_id = w.offer_id
FROM unnest(%(stones)s::text[], %(w_partition)s::int[], %(w_offset)s::int[], %(w_index)s::int[],
            %(w_offer)s::text[]) AS w(stone_id, partition_no, page_offset, item_index, offer_id)
WHERE d.run_id = %(run)s AND d.feed = %(feed)s AND d.stone_id = w.stone_id
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


@dataclass(frozen=True)
class _Contender:
    """An item of this run for one stone id: in the page being applied, or held by the raw row."""

    price: Decimal | None
    offer_id: str
    payload_hash: bytes
    position: tuple[int, int, int]  # partition_no, page_offset, item_index
    item: FeedItem | None = None  # None: the raw row's item

    @property
    def rank(self) -> tuple:
        # The duplicate rule of the module docstring; a missing price ranks last.
        return (self.price is None, self.price or 0, self.offer_id, self.payload_hash, self.position)


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
                _apply_page(conn, source.feed, run_id, partition_no, page, bounds)
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
    moved = conn.execute(
        """UPDATE partitions SET next_offset = next_offset + %(received)s, pages = pages + 1,
                  rows_fetched = rows_fetched + %(valid)s, rows_rejected = rows_rejected + %(rejected)s,
                  status = CASE WHEN %(end)s THEN 'fetched' ELSE status END,
                  finished_at = CASE WHEN %(end)s THEN now() ELSE finished_at END,
                  updated_at = now()
           WHERE run_id = %(run)s AND partition_no = %(no)s AND next_offset = %(offset)s AND status = 'fetching'""",
        {
            "received": page.received,
            "valid": len(page.items),
            "rejected": len(page.rejects),
            "end": page.is_end,
            "run": run_id,
            "no": partition_no,
            "offset": page.offset,
        },
    ).rowcount
    if not moved:
        raise PartitionMoved(f"partition {partition_no} is no longer at offset {page.offset}")
    if page.items:
        new, changed, duplicates = _write_items(conn, feed, run_id, partition_no, page, bounds)
        conn.execute(
            """UPDATE partitions SET rows_new = rows_new + %s, rows_changed = rows_changed + %s,
                      rows_duplicate = rows_duplicate + %s
               WHERE run_id = %s AND partition_no = %s""",
            (new, changed, duplicates, run_id, partition_no),
        )
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
    incoming: dict[str, list[_Contender]] = defaultdict(list)
    for place, item in enumerate(page.items):
        index = place if item.item_index is None else item.item_index
        # The price the rule ranks by: none for an implausible offer, which therefore never wins over a
        # plausible one (a stolen id served at $0 must not displace the real stone, only to be rejected).
        plausible = bounds.plausible(item.price_cents, item.carats)
        price = Decimal(item.price_cents) if plausible and item.price_cents is not None else None
        contender = _Contender(price, item.offer_id, item.payload_hash, (partition_no, page.offset, index), item)
        incoming[item.stone_id].append(contender)
    ids = sorted(incoming)
    params = {"feed": feed, "run": run_id, "ids": ids, "class": _LOCK_CLASS}
    conn.execute(_LOCK_STONES, params)
    held = {
        row[0]: _Contender(row[1], row[2], row[3], (row[4], row[5], row[6]))
        for row in conn.execute(_HELD, params).fetchall()
    }
    winners: list[_Contender] = []
    replaced: dict[str, _Contender] = {}  # stone id -> this page's winner, where the stone has losers
    displaced: dict[str, _Contender] = {}  # stone id -> this page's winner beating the raw row's item
    losers: list[tuple[str, _Contender, _Contender]] = []
    for stone_id in ids:
        contenders = list(incoming[stone_id])
        earlier = held.get(stone_id)
        # The raw row holding an item at one of this page's positions holds that very item (a page
        # applied again): it is the same item, never its own duplicate.
        if earlier is not None and earlier.position not in {c.position for c in contenders}:
            contenders.append(earlier)
        winner = min(contenders, key=lambda c: c.rank)
        for loser in contenders:
            if loser is not winner and loser.item is not None:
                losers.append((stone_id, loser, winner))
        if winner.item is None:
            continue  # the raw row's item still wins: nothing of this page is written for this stone
        winners.append(winner)
        if len(contenders) > 1:
            replaced[stone_id] = winner
        if earlier is not None and earlier in contenders:
            displaced[stone_id] = winner
    duplicates = len(losers)
    if displaced:
        duplicates += conn.execute(_DISPLACE, {**params, **_winner_arrays(displaced)}).rowcount
    if losers:
        with conn.cursor() as cur:
            cur.executemany(_LOSE, [_loser_row(run_id, feed, stone_id, lost, won) for stone_id, lost, won in losers])
    if replaced:
        conn.execute(_RENAME_WINNER, {**params, **_winner_arrays(replaced)})
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
    new, changed = conn.execute(_UPSERT, {**params, "partition": partition_no, "offset": page.offset}).fetchone()
    return new, changed, duplicates


def _winner_arrays(winners: dict[str, _Contender]) -> dict[str, list]:
    return {
        "stones": list(winners),
        "w_partition": [w.position[0] for w in winners.values()],
        "w_offset": [w.position[1] for w in winners.values()],
        "w_index": [w.position[2] for w in winners.values()],
        "w_offer": [w.offer_id for w in winners.values()],
    }


def _loser_row(run_id: uuid.UUID, feed: str, stone_id: str, lost: _Contender, won: _Contender) -> tuple:
    assert lost.item is not None
    return (
        run_id,
        feed,
        *lost.position,
        stone_id,
        lost.offer_id,
        lost.price,
        lost.payload_hash,
        lost.item.payload,
        *won.position,
        won.offer_id,
    )


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
