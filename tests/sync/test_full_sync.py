"""End to end: the real orchestrators on the local host, the emulator over HTTP, embedded PostgreSQL."""

from __future__ import annotations

import psycopg

from local_host.runtime import LocalRuntime
from orchestrators.sync_run import sync_instance_id
from shared.catalogue.mapping import map_payload
from shared.pricing.repository import active_rule_set


def test_full_sync_catalogues_exactly_the_feed(
    runtime: LocalRuntime, run_sync, feed_ids, listed, database_url: str
) -> None:
    summary = run_sync("nivoda-natural")
    assert summary["status"] == "succeeded", summary
    expected = feed_ids(labgrown=False)
    assert listed("nivoda-natural") == expected
    assert summary["fetched"] == len(expected) == summary["new"] == summary["catalogued"]
    with psycopg.connect(database_url) as conn:
        rules = active_rule_set(conn)
        rows = conn.execute(
            "SELECT r.payload, d.price_cents, d.pricing_version"
            " FROM diamonds d JOIN raw_stones r USING (feed, stone_id)"
        ).fetchall()
    assert len(rows) == len(expected)
    for payload, price_cents, version in rows:
        stone = map_payload("nivoda-natural", payload, lab_grown_default=False)
        assert price_cents == rules.price(stone).price_cents
        assert version == rules.version
    status = runtime.client.get_status(sync_instance_id("nivoda-natural"))
    assert status.custom_status["stage"] == "succeeded"
    assert status.custom_status["fetched"] == summary["partitions"] > 1


def test_second_full_run_changes_nothing(run_sync, listed) -> None:
    first = run_sync("nivoda-labgrown")
    second = run_sync("nivoda-labgrown")
    assert second["unchanged"] == second["fetched"] == first["fetched"]
    assert second["new"] == second["changed"] == second["catalogued"] == second["delisted"] == 0
    assert len(listed("nivoda-labgrown")) == first["fetched"]
