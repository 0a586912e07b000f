"""A run's plan: which partitions to fetch. Full runs scan afresh; incremental runs reuse the cached scan."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from shared.config import Settings
from shared.feed.registry import FeedSpec, ScanParams
from shared.feed.source import FeedSource, PriceBand
from shared.planning.partitions import Partition, balance, group, partition_count
from shared.planning.scan import Scan, density_scan
from shared.planning.store import ScanStore

log = logging.getLogger(__name__)

BANDS_PER_PARTITION = 5


class Plan(BaseModel):
    feed: str
    kind: Literal["full", "incremental"]
    updated_from: AwareDatetime | None = None
    scanned_at: AwareDatetime
    scan_reused: bool
    count_queries: int = Field(ge=0)  # spent by this plan (0 scan queries when the scan was reused)
    expected_total: int = Field(ge=0)
    partitions: list[Partition]

    @property
    def balance(self) -> float:
        return balance(self.partitions)


def plan_full(
    spec: FeedSpec,
    source: FeedSource,
    store: ScanStore,
    *,
    target_size: int,
    max_partitions: int,
    now: datetime,
    concurrency: int = 8,
) -> Plan:
    """Scan the whole feed, keep the scan, and split it into balanced partitions."""
    scan = density_scan(source, scan_params(spec, target_size), now=now, concurrency=concurrency)
    where = store.save(scan)
    log.info("scan stored", extra={"feed": spec.name, "where": where})
    parts = partition_count(scan.total, target_size=target_size, max_partitions=max_partitions)
    return Plan(
        feed=spec.name,
        kind="full",
        scanned_at=scan.scanned_at,
        scan_reused=False,
        count_queries=scan.count_queries,
        expected_total=scan.total,
        partitions=group(scan.bands, parts),
    )


def plan_incremental(
    spec: FeedSpec,
    source: FeedSource,
    store: ScanStore,
    *,
    updated_from: datetime,
    target_size: int,
    max_partitions: int,
    scan_max_age: timedelta,
    now: datetime,
    concurrency: int = 8,
) -> Plan:
    """Stones updated since `updated_from`, cut along the cached scan's density (one count query)."""
    scan, reused = _cached_or_fresh(
        spec, source, store, target_size=target_size, scan_max_age=scan_max_age, now=now, concurrency=concurrency
    )
    changed = source.count(PriceBand(0, None), updated_from)
    parts = partition_count(changed, target_size=target_size, max_partitions=max_partitions)
    partitions = _rescaled(group(scan.bands, parts), changed)
    return Plan(
        feed=spec.name,
        kind="incremental",
        updated_from=updated_from,
        scanned_at=scan.scanned_at,
        scan_reused=reused,
        count_queries=(0 if reused else scan.count_queries) + 1,
        expected_total=changed,
        partitions=partitions,
    )


def scan_params(spec: FeedSpec, target_size: int) -> ScanParams:
    """The feed's scan parameters, with bands fine enough to cut partitions of `target_size` evenly.

    Partitions can only be cut at band edges, so a band should hold a small share of a partition:
    about a fifth, which keeps the largest partition within ~20% of the mean where prices allow.
    Finer bands than that only cost count queries.
    """
    band_target = max(1, target_size // BANDS_PER_PARTITION)
    return replace(spec.scan, band_target=band_target)


def _cached_or_fresh(
    spec: FeedSpec,
    source: FeedSource,
    store: ScanStore,
    *,
    target_size: int,
    scan_max_age: timedelta,
    now: datetime,
    concurrency: int,
) -> tuple[Scan, bool]:
    scan = store.load(spec.name)
    if scan is not None and now - scan.scanned_at <= scan_max_age:
        return scan, True
    log.info("no fresh cached scan; scanning", extra={"feed": spec.name, "cached": scan is not None})
    scan = density_scan(source, scan_params(spec, target_size), now=now, concurrency=concurrency)
    store.save(scan)
    return scan, False


def _rescaled(partitions: list[Partition], total: int) -> list[Partition]:
    """Spread `total` over partitions in proportion to their scanned counts (largest remainder)."""
    weights = [p.expected_count for p in partitions]
    weight_sum = sum(weights)
    if weight_sum == 0:  # the scan saw nothing: no density to follow
        return [p.model_copy(update={"expected_count": total if i == 0 else 0}) for i, p in enumerate(partitions)]
    shares = [total * w / weight_sum for w in weights]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return [p.model_copy(update={"expected_count": c}) for p, c in zip(partitions, counts, strict=True)]


def plan_for(
    settings: Settings,
    spec: FeedSpec,
    source: FeedSource,
    store: ScanStore,
    *,
    updated_from: datetime | None,
    now: datetime,
) -> Plan:
    """A full plan, or an incremental one when `updated_from` is given, sized by the settings."""
    sizes = {
        "target_size": settings.plan_target_partition_size,
        "max_partitions": settings.plan_max_partitions,
        "concurrency": settings.plan_scan_concurrency,
    }
    if updated_from is None:
        return plan_full(spec, source, store, now=now, **sizes)
    return plan_incremental(
        spec,
        source,
        store,
        updated_from=updated_from,
        scan_max_age=timedelta(hours=settings.scan_max_age_hours),
        now=now,
        **sizes,
    )
