"""What the pipeline needs from any supplier feed: counts and pages of a price-per-carat band."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.feed.page import FeedPage


@dataclass(frozen=True, order=True)
class PriceBand:
    """Whole dollars per carat, half-open: dpc_from <= price per carat < dpc_to (None: no upper end)."""

    dpc_from: int
    dpc_to: int | None

    def __post_init__(self) -> None:
        if self.dpc_from < 0:
            raise ValueError(f"dpc_from must be >= 0, got {self.dpc_from}")
        if self.dpc_to is not None and self.dpc_to <= self.dpc_from:
            raise ValueError(f"empty band [{self.dpc_from}, {self.dpc_to})")

    @property
    def width(self) -> int | None:
        return None if self.dpc_to is None else self.dpc_to - self.dpc_from

    def __str__(self) -> str:
        return f"[{self.dpc_from}, {'inf' if self.dpc_to is None else self.dpc_to})"


class FeedSource(Protocol):
    """One feed of one supplier. `updated_from` narrows to stones changed since then (incremental runs)."""

    feed: str

    def count(self, band: PriceBand, updated_from: datetime | None = None) -> int: ...

    def page(self, band: PriceBand, offset: int, limit: int, updated_from: datetime | None = None) -> FeedPage: ...
