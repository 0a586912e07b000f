"""The planner against the emulator over HTTP: full plans of both feeds, incremental plans, edge inventories."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from emulator.server import RunningEmulator
from shared.config import load_settings
from shared.feed.registry import FEEDS, get_feed
from shared.feed.source import PriceBand
from shared.planning.plan import plan_full, plan_incremental
from shared.planning.store import LocalScanStore, open_scan_store


def feed_settings(settings, feed: RunningEmulator):
    return settings.model_copy(
        update={
            "nivoda_endpoint": feed.url,
            "nivoda_username": feed.config.username,
            "nivoda_password": feed.config.password,
        }
    )


def truth(feed: RunningEmulator, labgrown: bool) -> int:
    params = {"labgrown": str(labgrown).lower()}
    count: int = httpx.get(f"{feed.base_url}/_emulator/truth", params=params).json()["count"]
    return count


@pytest.fixture(scope="module")
def feed():
    with RunningEmulator(size=20_000, seed=5) as running:
        yield running


@pytest.mark.parametrize("feed_name", sorted(FEEDS))
def test_full_plan_covers_the_feed(settings, pool, feed, tmp_path, feed_name: str) -> None:
    spec = get_feed(feed_name)
    source = spec.open_source(feed_settings(settings, feed), pool)
    plan = plan_full(spec, source, LocalScanStore(tmp_path), target_size=1000, max_partitions=40, now=datetime.now(UTC))
    partitions = plan.partitions
    assert partitions[0].dpc_from == 0
    assert partitions[-1].dpc_to is None
    for before, after in itertools.pairwise(partitions):
        assert before.dpc_to == after.dpc_from  # no gap, no overlap
    labgrown = feed_name.endswith("labgrown")
    assert plan.expected_total == sum(p.expected_count for p in partitions) == truth(feed, labgrown)
    # Each partition's expected count is what the feed counts for its band.
    assert [source.count(p.price_band) for p in partitions] == [p.expected_count for p in partitions]
    assert len(partitions) == -(-plan.expected_total // 1000)
    assert plan.balance < 1.3


def test_incremental_plan_after_a_tick_reuses_the_scan(settings, pool, feed, tmp_path) -> None:
    spec = get_feed("nivoda-natural")
    source = spec.open_source(feed_settings(settings, feed), pool)
    store = LocalScanStore(tmp_path)
    plan_full(spec, source, store, target_size=1000, max_partitions=40, now=datetime.now(UTC))
    since = datetime.now(UTC) - timedelta(seconds=1)
    summary = httpx.post(f"{feed.base_url}/_emulator/tick", json={"sold": 50, "repriced": 120, "added": 80}).json()
    plan = plan_incremental(
        spec,
        source,
        store,
        updated_from=since,
        target_size=1000,
        max_partitions=40,
        scan_max_age=timedelta(hours=1),
        now=datetime.now(UTC),
    )
    assert plan.scan_reused
    assert plan.count_queries == 1
    assert plan.expected_total == source.count(PriceBand(0, None), since)
    # Stones the tick repriced, added or put on hold, in both feeds; the natural ones are planned.
    changed = set(summary["repriced"]) | set(summary["added"]) | set(summary["held"])
    assert 0 < plan.expected_total < len(changed)


@pytest.mark.parametrize("size", [0, 1])
def test_tiny_inventories(settings, pool, tmp_path, size: int) -> None:
    with RunningEmulator(size=size, seed=3, labgrown_share=0.0) as feed:
        spec = get_feed("nivoda-natural")
        plan = plan_full(
            spec,
            spec.open_source(feed_settings(settings, feed), pool),
            LocalScanStore(tmp_path),
            target_size=1000,
            max_partitions=40,
            now=datetime.now(UTC),
        )
    assert [(p.dpc_from, p.dpc_to, p.expected_count) for p in plan.partitions] == [(0, None, size)]


def test_scan_kept_in_azurite_is_reused(settings, pool, feed, azurite: str) -> None:
    blob_settings = load_settings(
        database_url=settings.database_url,
        scan_store="blob",
        scan_blob_connection_string=azurite,
        scan_blob_container="plans",
    )
    spec = get_feed("nivoda-labgrown")
    source = spec.open_source(feed_settings(settings, feed), pool)
    store = open_scan_store(blob_settings)
    full = plan_full(spec, source, store, target_size=2000, max_partitions=40, now=datetime.now(UTC))
    plan = plan_incremental(
        spec,
        source,
        open_scan_store(blob_settings),
        updated_from=datetime.now(UTC),
        target_size=2000,
        max_partitions=40,
        scan_max_age=timedelta(hours=1),
        now=datetime.now(UTC),
    )
    assert plan.scan_reused
    assert plan.scanned_at == full.scanned_at
