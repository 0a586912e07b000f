"""Duplicates within a run: which of several items serving one stone id the raw row keeps.

A stone id served by two items of one run (in one page, or across pages and partitions)
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

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from shared.feed.page import FeedItem, FeedPage
from shared.sync.bounds import MappingBounds

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


@dataclass(frozen=True)
class Contender:
    """An item of this run for one stone id: in the page being applied, or held by the raw row."""

    price: Decimal | None
    offer_id: str
    payload_hash: bytes
    position: tuple[int, int, int]  # partition_no, page_offset, item_index
    item: FeedItem | None = None  # None: the raw row's item

    @property
    def rank(self) -> tuple[Any, ...]:
        # The duplicate rule of the module docstring; a missing price ranks last.
        return (self.price is None, self.price or 0, self.offer_id, self.payload_hash, self.position)


def resolve(
    conn: psycopg.Connection, feed: str, run_id: uuid.UUID, partition_no: int, page: FeedPage, bounds: MappingBounds
) -> tuple[list[Contender], int]:
    """The page's items that win their stone id (to be written), and how many duplicates were recorded."""
    incoming: dict[str, list[Contender]] = defaultdict(list)
    for place, item in enumerate(page.items):
        index = place if item.item_index is None else item.item_index
        # The price the rule ranks by: none for an implausible offer, which therefore never wins over a
        # plausible one (a stolen id served at $0 must not displace the real stone, only to be rejected).
        plausible = bounds.plausible(item.price_cents, item.carats)
        price = Decimal(item.price_cents) if plausible and item.price_cents is not None else None
        contender = Contender(price, item.offer_id, item.payload_hash, (partition_no, page.offset, index), item)
        incoming[item.stone_id].append(contender)
    ids = sorted(incoming)
    params = {"feed": feed, "run": run_id, "ids": ids, "class": _LOCK_CLASS}
    conn.execute(_LOCK_STONES, params)
    held = {
        row[0]: Contender(row[1], row[2], row[3], (row[4], row[5], row[6]))
        for row in conn.execute(_HELD, params).fetchall()
    }
    winners: list[Contender] = []
    replaced: dict[str, Contender] = {}  # stone id -> this page's winner, where the stone has losers
    displaced: dict[str, Contender] = {}  # stone id -> this page's winner beating the raw row's item
    losers: list[tuple[str, Contender, Contender]] = []
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
    return winners, duplicates


def _winner_arrays(winners: dict[str, Contender]) -> dict[str, list[Any]]:
    return {
        "stones": list(winners),
        "w_partition": [w.position[0] for w in winners.values()],
        "w_offset": [w.position[1] for w in winners.values()],
        "w_index": [w.position[2] for w in winners.values()],
        "w_offer": [w.offer_id for w in winners.values()],
    }


def _loser_row(run_id: uuid.UUID, feed: str, stone_id: str, lost: Contender, won: Contender) -> tuple[Any, ...]:
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
