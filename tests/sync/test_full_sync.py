"""End to end: the real orchestrators on the local host, the emulator over HTTP, embedded PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import namedtuple_row

from local_host.runtime import LocalRuntime
from shared.pricing.repository import active_rule_set
from shared.runs.starts import sync_instance_id


def test_full_sync_catalogues_exactly_the_feed(
    runtime: LocalRuntime, run_sync, feed_ids, listed, database_url: str
) -> None:
    summary = run_sync("nivoda-natural")
    assert summary["status"] == "succeeded", summary
    expected = feed_ids(labgrown=False)
    assert listed("nivoda-natural") == expected
    assert summary["fetched"] == len(expected) == summary["new"] == summary["catalogued"]
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=namedtuple_row) as cur:
        rules = active_rule_set(conn)
        # Any: a named-tuple row's fields are known only when the statement runs.
        rows: list[Any] = cur.execute(
            """SELECT d.feed, d.shape, d.carats, d.cost_cents, d.lab_grown, d.fancy_color, d.price_cents,
                      d.pricing_version, d.pricing_rule_id, (r.payload ->> 'price')::bigint AS feed_price
               FROM diamonds d JOIN raw_stones r USING (feed, stone_id)"""
        ).fetchall()
    assert len(rows) == len(expected)
    for row in rows:
        # The SQL pricing of the consolidation equals the reference rules, on the supplier's own price.
        assert row.cost_cents == row.feed_price
        priced = rules.price(row)
        assert (row.price_cents, row.pricing_rule_id) == (priced.price_cents, priced.rule_id)
        assert row.pricing_version == rules.version
    status = runtime.client.get_status(sync_instance_id("nivoda-natural"))
    assert status.custom_status["stage"] == "succeeded"
    assert status.custom_status["fetched_partitions"] == summary["partitions"] > 1


def test_second_full_run_changes_nothing(run_sync, listed) -> None:
    first = run_sync("nivoda-labgrown")
    second = run_sync("nivoda-labgrown")
    assert second["unchanged"] == second["fetched"] == first["fetched"]
    assert second["new"] == second["changed"] == second["catalogued"] == second["delisted"] == 0
    assert len(listed("nivoda-labgrown")) == first["fetched"]


def started(request: dict[str, Any] | None) -> str:
    """The instance id of a run start_sync started (None: it found one active)."""
    assert request is not None
    instance_id: str = request["instance_id"]
    return instance_id


def test_timer_while_a_run_is_active_starts_nothing(runtime: LocalRuntime, run_sync) -> None:
    import asyncio

    from local_host.client import AsyncLocalClient
    from shared.runs.starts import start_sync

    client = AsyncLocalClient(runtime.client)
    runtime.host.stop()  # hold the first run in Pending so the second timer surely finds it active
    try:
        first = started(asyncio.run(start_sync(client, "nivoda-natural", "full", "timer")))
        second = asyncio.run(start_sync(client, "nivoda-natural", "incremental", "timer"))
        other_feed = started(asyncio.run(start_sync(client, "nivoda-labgrown", "full", "timer")))
    finally:
        runtime.host.start()
    assert first == sync_instance_id("nivoda-natural")
    assert second is None
    assert other_feed == sync_instance_id("nivoda-labgrown")  # feeds run independently
    for instance in (first, other_feed):
        status = runtime.client.wait_for_completion(instance, timeout=180)
        assert status.output["status"] == "succeeded"
    again = started(asyncio.run(start_sync(client, "nivoda-natural", "incremental", "timer")))  # idle: starts
    assert runtime.client.wait_for_completion(again, timeout=180).output["kind"] == "incremental"


def test_a_stone_that_comes_back_is_relisted(run_sync, listed, database_url: str) -> None:
    run_sync("nivoda-labgrown")
    everything = listed("nivoda-labgrown")
    # As if an earlier full run had not seen two stones: delisted, payload unchanged since.
    with psycopg.connect(database_url) as conn:
        gone = [
            r[0]
            for r in conn.execute(
                "UPDATE diamonds SET delisted_at = now() WHERE stone_id IN "
                "(SELECT stone_id FROM diamonds ORDER BY stone_id LIMIT 2) RETURNING stone_id"
            )
        ]
    assert listed("nivoda-labgrown") == everything - set(gone)
    summary = run_sync("nivoda-labgrown")
    assert summary["relisted"] == 2
    assert summary["delisted"] == 0
    assert listed("nivoda-labgrown") == everything
