"""Incremental runs, delisting, faults and dead-letter replay, end to end on the local host."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from emulator.config import FaultSettings
from shared.db.rows import one


def tick(feed, **changes) -> dict[str, Any]:
    ticked: dict[str, Any] = httpx.post(f"{feed.base_url}/_emulator/tick", json=changes).json()
    return ticked


def test_incremental_picks_up_changes_and_the_next_full_run_delists_sold(
    feed, run_sync, feed_ids, listed, database_url: str
) -> None:
    run_sync("nivoda-natural")
    before = listed("nivoda-natural")
    changes = tick(feed, sold=40, repriced=60, added=30)
    natural_now = feed_ids(labgrown=False)
    added = set(changes["added"]) & natural_now
    repriced = set(changes["repriced"]) & natural_now
    sold = set(changes["sold"]) & before
    assert added
    assert repriced
    assert sold

    incremental = run_sync("nivoda-natural", "incremental")
    assert incremental["kind"] == "incremental"
    assert added <= listed("nivoda-natural")
    assert incremental["new"] == len(added)
    with psycopg.connect(database_url) as conn:
        history = {
            r[0] for r in conn.execute("SELECT d.stone_id FROM price_history h JOIN diamonds d USING (diamond_id)")
        }
    assert history == repriced  # every repriced stone, and only those, has a price change recorded
    assert sold <= listed("nivoda-natural")  # an incremental run cannot know what was sold

    full = run_sync("nivoda-natural")
    assert full["delisted"] == len(sold)
    assert listed("nivoda-natural") == natural_now
    with psycopg.connect(database_url) as conn:
        delisted = {r[0] for r in conn.execute("SELECT stone_id FROM diamonds WHERE delisted_at IS NOT NULL")}
    assert delisted == sold


def test_run_survives_faults_with_exact_counts(feed, run_sync, feed_ids, listed, database_url: str) -> None:
    feed.faults.replace(
        FaultSettings(
            rate_5xx=0.10,
            rate_429=0.05,
            retry_after_seconds=0,
            rate_timeout=0.02,
            timeout_hang_seconds=3,
            malformed_item_rate=0.02,
        )
    )
    served = httpx.get(f"{feed.base_url}/_emulator/malformed").json()["stones"]
    summary = run_sync("nivoda-natural", timeout=300)
    feed.faults.replace(FaultSettings())
    assert summary["status"] == "succeeded", summary

    truth = httpx.get(f"{feed.base_url}/_emulator/truth", params={"labgrown": "false"}).json()["count"]
    natural = feed_ids(labgrown=False) - {None}
    broken = {s["id"] for s in served}
    unknown_shape = {s["id"] for s in served if s["kind"] == "unknown_shape"}
    with psycopg.connect(database_url) as conn:
        (feed_rejects,) = one(conn.execute("SELECT count(*) FROM feed_rejects").fetchone())
        mapping_rejects = {r[0] for r in conn.execute("SELECT stone_id FROM mapping_rejects")}
    assert feed_rejects > 0
    assert summary["fetched"] + feed_rejects == truth  # every served item is either a raw row or a reject
    assert mapping_rejects == unknown_shape & natural  # well-formed at the boundary, refused by the catalogue
    assert summary["rejected"] == feed_rejects + len(mapping_rejects)
    assert listed("nivoda-natural") == natural - broken


def test_permanent_partition_failure_dead_letters_then_replays(
    sync_settings_for, pool, feed, feed_ids, listed, database_url: str
) -> None:
    from datetime import UTC, datetime

    from local_host.runtime import LocalRuntime
    from shared.feed.registry import get_feed
    from shared.planning.plan import plan_full
    from shared.planning.store import LocalScanStore
    from shared.runs.starts import sync_instance_id, sync_request

    local = sync_settings_for(
        sync_min_success_share=0.5, sync_fetch_attempts=2, sync_fetch_retry_first_seconds=0.1, feed_max_attempts=2
    )
    spec = get_feed("nivoda-natural")
    # The run plans exactly these partitions (same inventory, same settings): make the second one fail.
    preview = plan_full(
        spec,
        spec.open_source(local, pool),
        LocalScanStore(local.scan_store_dir / "preview"),
        target_size=local.plan_target_partition_size,
        max_partitions=local.plan_max_partitions,
        now=datetime.now(UTC),
    )
    doomed = preview.partitions[1]
    feed.faults.replace(FaultSettings(failing_dpc_from=[doomed.dpc_from]))
    with LocalRuntime(local, pool=pool) as runtime:
        instance = runtime.client.start_new(
            "sync_run", sync_instance_id(spec.name), sync_request(spec.name, "full", "cli")
        )
        summary = runtime.client.wait_for_completion(instance, timeout=180).output
        assert summary["status"] == "partially_succeeded", summary
        assert summary["failed_partitions"] == 1
        assert summary["delisted"] == 0  # an incomplete full run prunes nothing
        with psycopg.connect(database_url) as conn:
            letters = conn.execute("SELECT partition_no, status, attempts FROM dead_letters").fetchall()
            assert conn.execute("SELECT watermark FROM feed_state").fetchone() is None  # not advanced
        assert letters == [(1, "open", 2)]
        expected = feed_ids(labgrown=False)
        assert len(expected - listed(spec.name)) == doomed.expected_count > 0

        feed.faults.replace(FaultSettings())
        replay = runtime.client.start_new("sync_replay", client_input={"run_id": summary["run_id"]})
        replayed = runtime.client.wait_for_completion(replay, timeout=180).output
    assert replayed["status"] == "succeeded", replayed
    assert replayed["run_id"] == summary["run_id"]
    assert listed(spec.name) == expected
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT status FROM dead_letters").fetchall() == [("replayed",)]
        assert conn.execute("SELECT status FROM runs").fetchall() == [("succeeded",)]
        assert conn.execute("SELECT watermark IS NOT NULL FROM feed_state").fetchone() == (True,)
