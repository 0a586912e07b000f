"""The planner's arithmetic: density scan and balanced partitions over any price distribution.

These are unit tests of the domain logic over an in-memory FeedSource (the protocol the pipeline
talks to); tests/planning/test_planner_feed.py runs the same planner against the emulator over HTTP.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.feed.page import FeedPage
from shared.feed.registry import ScanParams, get_feed
from shared.feed.source import PriceBand
from shared.planning.partitions import Partition, balance, group, partition_count
from shared.planning.plan import plan_full, plan_incremental
from shared.planning.scan import density_scan
from shared.planning.store import LocalScanStore

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
SMALL = ScanParams(dense_max_dpc=1000, dense_step=100, band_target=20, growth=5, tail_end_dpc=100_000)


class ListSource:
    """Stones as exact prices per carat (Fractions), counted like the feed counts: from <= dpc < to."""

    def __init__(self, dpcs: list[Fraction], feed: str = "test-feed", updated: list[datetime] | None = None) -> None:
        self.dpcs = sorted(dpcs)
        self.feed = feed
        self.updated = updated
        self.queries = 0

    def count(self, band: PriceBand, updated_from: datetime | None = None) -> int:
        self.queries += 1
        if updated_from is not None:
            assert self.updated is not None
            return sum(1 for u in self.updated if u >= updated_from)
        lo = bisect_left(self.dpcs, band.dpc_from)
        hi = len(self.dpcs) if band.dpc_to is None else bisect_left(self.dpcs, band.dpc_to)
        return hi - lo

    def page(self, band: PriceBand, offset: int, limit: int, updated_from: datetime | None = None) -> FeedPage:
        raise AssertionError("the planner never pages")


def assert_tiles(partitions: list[Partition]) -> None:
    """Partitions cover [0, inf) in order with no gap and no overlap."""
    assert partitions[0].dpc_from == 0
    assert partitions[-1].dpc_to is None
    for before, after in itertools.pairwise(partitions):
        assert before.dpc_to == after.dpc_from
    assert [p.partition_no for p in partitions] == list(range(len(partitions)))


prices = st.lists(
    st.one_of(
        st.fractions(min_value=0, max_value=1500, max_denominator=100),
        st.fractions(min_value=1500, max_value=200_000, max_denominator=100),
    ),
    max_size=400,
)


@settings(max_examples=150, deadline=None)
@given(dpcs=prices, target=st.integers(1, 60), max_parts=st.integers(1, 30))
def test_partitions_tile_and_counts_add_up(dpcs: list[Fraction], target: int, max_parts: int) -> None:
    source = ListSource(dpcs)
    scan = density_scan(source, SMALL, now=NOW)
    assert scan.total == len(dpcs)
    assert scan.count_queries == source.queries
    parts = group(scan.bands, partition_count(scan.total, target_size=target, max_partitions=max_parts))
    assert_tiles(parts)
    assert len(parts) <= max_parts
    assert sum(p.expected_count for p in parts) == len(dpcs)
    for partition in parts:  # every expected count is the true count of its band
        assert source.count(partition.price_band) == partition.expected_count
    assert all(p.expected_count > 0 for p in parts) or len(parts) == 1


def test_bands_are_split_until_small_or_one_dollar_wide() -> None:
    dpcs = [Fraction(100 + i % 100, 1) + Fraction(1, 3) for i in range(2000)]  # 20 per dollar in $100-$200
    scan = density_scan(ListSource(dpcs), SMALL, now=NOW)
    assert all(
        b.count <= SMALL.band_target * SMALL.recount_factor or (b.dpc_to or 0) - b.dpc_from == 1
        for b in scan.bands
        if b.dpc_to is not None
    )
    assert max(b.count for b in scan.bands) <= 30


def test_empty_feed_gives_one_open_partition() -> None:
    scan = density_scan(ListSource([]), SMALL, now=NOW)
    parts = group(scan.bands, partition_count(0, target_size=10, max_partitions=5))
    assert [(p.dpc_from, p.dpc_to, p.expected_count) for p in parts] == [(0, None, 0)]


def test_single_stone() -> None:
    scan = density_scan(ListSource([Fraction(4321)]), SMALL, now=NOW)
    parts = group(scan.bands, partition_count(1, target_size=10, max_partitions=5))
    assert [(p.dpc_from, p.dpc_to, p.expected_count) for p in parts] == [(0, None, 1)]


def test_every_stone_at_one_price_stays_one_partition() -> None:
    source = ListSource([Fraction(2500)] * 5000)
    scan = density_scan(source, SMALL, now=NOW)
    parts = group(scan.bands, partition_count(5000, target_size=100, max_partitions=50))
    # A one-dollar band cannot be split by price: it is one partition, however large.
    assert len(parts) == 1
    assert parts[0].expected_count == 5000
    assert [b for b in scan.bands if b.count] == [b for b in scan.bands if b.dpc_from == 2500 and b.dpc_to == 2501]


def test_partitions_are_balanced_on_a_skewed_distribution() -> None:
    # Dense low prices and a long tail, like the natural feed.
    dpcs = [Fraction(200 + (i * 37) % 4800) + Fraction(i % 7, 7) for i in range(20_000)]
    dpcs += [Fraction(5000 + (i * i) % 90_000) for i in range(600)]
    params = ScanParams(dense_max_dpc=5000, dense_step=50, band_target=100)
    scan = density_scan(ListSource(dpcs), params, now=NOW)
    parts = group(scan.bands, partition_count(len(dpcs), target_size=1000, max_partitions=40))
    assert len(parts) == 21
    assert balance(parts) < 1.2


def test_max_partitions_caps_the_count() -> None:
    assert partition_count(1_000_000, target_size=1000, max_partitions=200) == 200
    assert partition_count(0, target_size=1000, max_partitions=200) == 1
    assert partition_count(1001, target_size=1000, max_partitions=200) == 2


def test_full_plan_stores_its_scan_and_incremental_reuses_it(tmp_path) -> None:
    spec = get_feed("nivoda-natural")
    dpcs = [Fraction(100 + i) for i in range(3000)]
    updated = [NOW - timedelta(days=2)] * 2900 + [NOW - timedelta(minutes=5)] * 100
    store = LocalScanStore(tmp_path)
    full = plan_full(spec, ListSource(dpcs, spec.name), store, target_size=500, max_partitions=50, now=NOW)
    assert full.kind == "full"
    assert full.expected_total == 3000
    assert not full.scan_reused
    assert store.load(spec.name) is not None

    source = ListSource(dpcs, spec.name, updated)
    later = NOW + timedelta(hours=1)
    incremental = plan_incremental(
        spec,
        source,
        store,
        updated_from=NOW - timedelta(hours=1),
        target_size=40,
        max_partitions=50,
        scan_max_age=timedelta(hours=24),
        now=later,
    )
    assert incremental.scan_reused
    assert source.queries == 1 == incremental.count_queries  # only the count of changed stones
    assert incremental.expected_total == 100
    assert sum(p.expected_count for p in incremental.partitions) == 100
    assert len(incremental.partitions) == 3
    assert_tiles(incremental.partitions)


def test_incremental_rescans_when_the_cached_scan_is_stale(tmp_path) -> None:
    spec = get_feed("nivoda-labgrown")
    store = LocalScanStore(tmp_path)
    dpcs = [Fraction(50 + i % 300) for i in range(1000)]
    plan_full(spec, ListSource(dpcs, spec.name), store, target_size=500, max_partitions=50, now=NOW)
    source = ListSource(dpcs, spec.name, [NOW] * 1000)
    plan = plan_incremental(
        spec,
        source,
        store,
        updated_from=NOW - timedelta(hours=1),
        target_size=500,
        max_partitions=50,
        scan_max_age=timedelta(hours=1),
        now=NOW + timedelta(hours=2),
    )
    assert not plan.scan_reused
    assert plan.count_queries == source.queries > 1
    scan = store.load(spec.name)
    assert scan is not None
    assert scan.scanned_at == NOW + timedelta(hours=2)


def test_unreadable_cached_scan_means_rescan(tmp_path) -> None:
    (tmp_path / "nivoda-natural.json").write_text('{"feed": "nivoda-natural", "bands": "garbage"}')
    assert LocalScanStore(tmp_path).load("nivoda-natural") is None


def test_group_refuses_bands_that_do_not_tile() -> None:
    from shared.planning.scan import Band

    with pytest.raises(ValueError, match="tile"):
        group([Band(dpc_from=10, dpc_to=None, count=1)], 1)
