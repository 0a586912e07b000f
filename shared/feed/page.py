"""What a feed source hands back: validated items with their canonical payload, and rejects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


def canonical_json(payload: Any) -> str:
    """The payload as compact JSON with sorted keys: equal content gives equal text and hash."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def storable_json(payload: Any) -> str:
    """JSON that a jsonb column accepts for any item a feed sent, faithful to what arrived.

    An ordinary item is its canonical JSON. jsonb cannot hold NUL or a lone surrogate, nor NaN or
    Infinity, so a poison item is stored as a JSON *string* holding the item's JSON text in ASCII:
    there NUL and surrogates read as the escapes \\u0000 / \\ud800 and NaN as the bare word NaN,
    visibly, and `json.loads(payload #>> '{}')` gives back exactly the item that was sent.
    """
    text: str | None
    try:
        text = canonical_json(payload)
        text.encode()  # a lone surrogate has no UTF-8 form
    except (ValueError, UnicodeEncodeError):
        text = None  # NaN, Infinity or a lone surrogate: the item is kept as text below
    if text is not None and "\\u0000" not in text:
        return text
    return json.dumps(json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True))


@dataclass(frozen=True)
class FeedItem:
    """One stone offer that passed validation, keyed by the supplier's stone id."""

    stone_id: str
    offer_id: str
    payload: str  # canonical JSON, stored as-is in raw_stones.payload
    payload_hash: bytes  # sha256 of `payload`
    price_cents: int | None = None  # as validated: ranks duplicates of one stone id in a run
    item_index: int | None = None  # position in the page as served (None: its place in `items`)
    carats: Decimal | None = None  # as validated: with the price, says whether the offer is plausible


@dataclass(frozen=True)
class RejectedItem:
    """An item that failed validation: recorded with its reason, never dropped silently."""

    item_index: int  # position in the page
    stone_id: str | None  # when the item carried a readable one
    reason: str
    payload: str  # canonical JSON of what arrived


@dataclass(frozen=True)
class FeedPage:
    """One page of a partition. `received` (valid + rejected) is what the offset advances by."""

    offset: int
    items: list[FeedItem] = field(default_factory=list)
    rejects: list[RejectedItem] = field(default_factory=list)
    total_count: int | None = None  # informational only: the feed's own figure is unreliable

    @property
    def received(self) -> int:
        return len(self.items) + len(self.rejects)

    @property
    def is_end(self) -> bool:
        """Only an empty page ends a partition; short pages arrive mid-stream."""
        return self.received == 0
