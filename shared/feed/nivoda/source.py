"""Nivoda as a FeedSource: one client, a feed's base filters, and price bands as DiamondQuery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.feed.nivoda.client import NivodaClient
from shared.feed.page import FeedPage
from shared.feed.source import PriceBand


class NivodaSource:
    def __init__(self, client: NivodaClient, feed: str, base_query: dict[str, Any]) -> None:
        self.client = client
        self.feed = feed
        self.base_query = base_query

    def diamond_query(self, band: PriceBand, updated_from: datetime | None = None) -> dict[str, Any]:
        """The DiamondQuery for a band; dollar_per_carat takes whole dollars, half-open."""
        dpc: dict[str, int] = {"from": band.dpc_from}
        if band.dpc_to is not None:
            dpc["to"] = band.dpc_to
        query = {**self.base_query, "dollar_per_carat": dpc}
        if updated_from is not None:
            if updated_from.tzinfo is None:
                raise ValueError("updated_from must be timezone-aware")
            query["updated"] = {"from": updated_from.astimezone(UTC).isoformat().replace("+00:00", "Z")}
        return query

    def count(self, band: PriceBand, updated_from: datetime | None = None) -> int:
        return self.client.count(self.diamond_query(band, updated_from))

    def page(self, band: PriceBand, offset: int, limit: int, updated_from: datetime | None = None) -> FeedPage:
        return self.client.page(self.diamond_query(band, updated_from), offset, limit)
