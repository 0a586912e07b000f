"""A stone as the pricing rules see it (shared/pricing/rules.py's Priceable), for tests that price stones
that are not in the catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass
class Stone:
    feed: str
    shape: str
    carats: Decimal
    cost_cents: int
    lab_grown: bool
    fancy_color: str | None
    lab: str | None
    color: str | None
    clarity: str | None
