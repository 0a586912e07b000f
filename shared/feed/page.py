"""What a feed source hands back: validated items with their canonical payload, and rejects."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def canonical_json(payload: Any) -> str:
    """The payload as compact JSON with sorted keys: equal content gives equal text and hash."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class FeedItem:
    """One stone offer that passed validation, keyed by the supplier's stone id."""

    stone_id: str
    offer_id: str
    payload: str  # canonical JSON, stored as-is in raw_stones.payload
    payload_hash: bytes  # sha256 of `payload`

    @classmethod
    def from_payload(cls, stone_id: str, offer_id: str, payload: Any) -> FeedItem:
        text = canonical_json(payload)
        return cls(stone_id, offer_id, text, hashlib.sha256(text.encode()).digest())


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
