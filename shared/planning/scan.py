"""The density scan: how many stones each price-per-carat band holds, from count-only queries.

Fixed steps cover the dense zone; above it, steps adapt to aim at `band_target` stones per band
(growing through empty ranges); bands that still hold more than `recount_factor` x target are split
and counted again, down to one dollar wide. The bands tile [0, inf) exactly, and the scan total is
the sum of their counts. Counts are hints (the feed's count can disagree with its paging): fetching
never stops at a count, only at an empty page.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from itertools import pairwise

from pydantic import AwareDatetime, BaseModel, Field

from shared.feed.registry import ScanParams
from shared.feed.source import FeedSource, PriceBand

log = logging.getLogger(__name__)


class Band(BaseModel):
    dpc_from: int = Field(ge=0)
    dpc_to: int | None
    count: int = Field(ge=0)

    @property
    def price_band(self) -> PriceBand:
        return PriceBand(self.dpc_from, self.dpc_to)


class Scan(BaseModel):
    """A feed's density by price per carat at one moment; cached so incremental runs can reuse it."""

    feed: str
    scanned_at: AwareDatetime
    count_queries: int = Field(ge=0)
    bands: list[Band]

    @property
    def total(self) -> int:
        return sum(band.count for band in self.bands)


class _Counter:
    def __init__(self, source: FeedSource) -> None:
        self.source = source
        self.queries = 0

    def __call__(self, band: PriceBand) -> int:
        self.queries += 1
        return self.source.count(band)


def density_scan(source: FeedSource, params: ScanParams, *, now: datetime | None = None) -> Scan:
    """Scan `source` and return bands tiling [0, inf) with their counts."""
    count = _Counter(source)
    bands: list[Band] = []
    for lo in range(0, params.dense_max_dpc, params.dense_step):
        bands.extend(_counted(count, PriceBand(lo, min(lo + params.dense_step, params.dense_max_dpc)), params))
    bands.extend(_scan_tail(count, params))
    scan = Scan(feed=source.feed, scanned_at=now or datetime.now(UTC), count_queries=count.queries, bands=bands)
    log.info(
        "density scan done",
        extra={"feed": source.feed, "stones": scan.total, "bands": len(bands), "count_queries": count.queries},
    )
    return scan


def _scan_tail(count: _Counter, params: ScanParams) -> list[Band]:
    """Adaptive steps from dense_max_dpc until the tail's stones are all seen, then one open band."""
    tail_total = count(PriceBand(params.dense_max_dpc, None))
    bands: list[Band] = []
    lo, width, seen = params.dense_max_dpc, params.dense_step, 0
    while seen < tail_total and lo < params.tail_end_dpc:
        band = PriceBand(lo, min(lo + width, params.tail_end_dpc))
        counted = _counted(count, band, params)
        stones = sum(b.count for b in counted)
        bands.extend(counted)
        seen += stones
        lo = band.dpc_to  # type: ignore[assignment]  # bounded band
        # Aim the next step at band_target stones, from the density just seen; grow through empty ranges.
        if stones == 0:
            width *= params.growth
        else:
            width = max(1, min(width * params.growth, round(width * params.band_target / stones)))
    # Everything above: normally empty, but counted, because new stones may have arrived meanwhile.
    bands.append(Band(dpc_from=lo, dpc_to=None, count=count(PriceBand(lo, None))))
    return bands


def _counted(count: _Counter, band: PriceBand, params: ScanParams) -> list[Band]:
    """Count a bounded band; split and re-count it while it is oversized and can still be split."""
    stones = count(band)
    limit = params.band_target * params.recount_factor
    width = band.width
    if stones <= limit or width is None or width <= 1:
        return [Band(dpc_from=band.dpc_from, dpc_to=band.dpc_to, count=stones)]
    parts = min(width, math.ceil(stones / params.band_target))
    edges = [band.dpc_from + (width * i) // parts for i in range(parts + 1)]
    result: list[Band] = []
    for lo, hi in pairwise(edges):
        if hi > lo:
            result.extend(_counted(count, PriceBand(lo, hi), params))
    return result
