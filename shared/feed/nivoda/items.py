"""Validation of Nivoda items at the feed boundary.

Only what the catalogue cannot do without is required (ids, price, shape, carats, lab-grown flag);
the rest is optional here and mapped later. Unknown fields are kept: the raw row stores the item as
received. A failing item becomes a RejectedItem with pydantic's reason; the page goes on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.feed.page import FeedItem, RejectedItem, canonical_json

_Id = Field(min_length=1, max_length=200)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class Certificate(_Lenient):
    shape: str = Field(min_length=1, max_length=50)
    carats: Decimal = Field(gt=0, lt=1000, decimal_places=3)
    labgrown: bool | None = None
    color: str | None = None
    clarity: str | None = None
    certNumber: str | None = None
    lab: str | None = None


class Diamond(_Lenient):
    id: str = _Id
    availability: str | None = None
    certificate: Certificate


class Item(_Lenient):
    id: str = _Id
    price: int = Field(ge=0, strict=False)  # cents
    diamond: Diamond


def validate_items(raw_items: Any) -> tuple[list[FeedItem], list[RejectedItem]]:
    """Split a page's raw items into valid FeedItems and RejectedItems with reasons."""
    if not isinstance(raw_items, list):
        raise TypeError(f"items must be a list, got {type(raw_items).__name__}")
    items: list[FeedItem] = []
    rejects: list[RejectedItem] = []
    for index, raw in enumerate(raw_items):
        try:
            item = Item.model_validate(raw)
        except ValidationError as exc:
            rejects.append(RejectedItem(index, _readable_stone_id(raw), _reason(exc), canonical_json(raw)))
            continue
        items.append(FeedItem.from_payload(item.diamond.id, item.id, raw))
    return items, rejects


def _reason(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)


def _readable_stone_id(raw: Any) -> str | None:
    diamond = raw.get("diamond") if isinstance(raw, dict) else None
    stone_id = diamond.get("id") if isinstance(diamond, dict) else None
    return stone_id if isinstance(stone_id, str) and stone_id else None
