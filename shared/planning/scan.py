"""The density scan: how many stones each price-per-carat band holds, from count-only queries.

Fixed steps cover the dense zone; above it, steps adapt to aim at `band_target` stones per band
(growing through empty ranges); bands that still hold more than `recount_factor` x target are split
and counted again, down to one dollar wide. The bands tile [0, inf) exactly, and the scan total is
the sum of their counts. Counts are hints (the feed's count can disagree with its paging): fetching
never stops at a count, only at an empty page.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
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
    """Counts bands, `concurrency` at a time: with feed latency, one query at a time would leave the
    request budget idle (hundreds of counts x 300 ms). The shared budget still caps the rate."""

    def __init__(self, source: FeedSource, executor: ThreadPoolExecutor) -> None:
        self.source = source
        self.executor = executor
        self.queries = 0
        self._lock = threading.Lock()

    def __call__(self, band: PriceBand) -> int:
        with self._lock:
            self.queries += 1
        return self.source.count(band)

    def many(self, bands: list[PriceBand]) -> list[int]:
        # Each count runs in a copy of the caller's context, so its log lines keep the run's
        # correlation id and run id (pool threads start with an empty context).
        futures = [self.executor.submit(contextvars.copy_context().run, self, band) for band in bands]
        return [future.result() for future in futures]


def density_scan(source: FeedSource, params: ScanParams, *, now: datetime | None = None, concurrency: int = 8) -> Scan:
    """Scan `source` and return bands tiling [0, inf) with their counts."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="scan") as executor:
        count = _Counter(source, executor)
        dense = [
            PriceBand(lo, min(lo + params.dense_step, params.dense_max_dpc))
            for lo in range(0, params.dense_max_dpc, params.dense_step)
        ]
        bands = [band for group in _counted_many(count, dense, params) for band in group]
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
        (counted,) = _counted_many(count, [band], params)
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


def _counted_many(count: _Counter, bands: list[PriceBand], params: ScanParams) -> list[list[Band]]:
    """Count bounded bands (concurrently); split and re-count those that are oversized and can still
    be split, one level at a time. Returns, per input band, the bands it became, in order."""
    counts = count.many(bands)
    splits = [_split(band, stones, params) for band, stones in zip(bands, counts, strict=True)]
    finer = iter(_counted_many(count, [part for parts in splits for part in parts], params) if any(splits) else ())
    result = []
    for band, stones, parts in zip(bands, counts, splits, strict=True):
        if parts:
            result.append([piece for _ in parts for piece in next(finer)])
        else:
            result.append([Band(dpc_from=band.dpc_from, dpc_to=band.dpc_to, count=stones)])
    return result


def _split(band: PriceBand, stones: int, params: ScanParams) -> list[PriceBand]:
    """The equal sub-bands an oversized band is counted again as; [] when it stays as it is."""
    width = band.width
    if stones <= params.band_target * params.recount_factor or width is None or width <= 1:
        return []
    parts = min(width, math.ceil(stones / params.band_target))
    edges = [band.dpc_from + (width * i) // parts for i in range(parts + 1)]
    return [PriceBand(lo, hi) for lo, hi in pairwise(edges) if hi > lo]
