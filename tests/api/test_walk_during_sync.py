"""A cursor walk while a sync writes: every stone listed throughout appears exactly once, in order."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest


def listed_ids(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT diamond_id FROM diamonds WHERE delisted_at IS NULL")}


@pytest.mark.slow
def test_walk_while_a_full_sync_writes(client, run_sync, feed, database_url) -> None:
    run_sync("nivoda-natural")
    before = listed_ids(database_url)
    feed.inventory.tick(sold=0.05, repriced=0.3, added=0.05)
    done = threading.Event()
    outcome: list[dict[str, Any]] = []

    def sync() -> None:
        try:
            outcome.append(run_sync("nivoda-natural", "full"))
        finally:
            done.set()

    writer = threading.Thread(target=sync)
    writer.start()
    walked, pages_during_sync = [], 0
    params = {"sort": "carats", "limit": 25}
    while True:
        page = client.search(**params)
        walked.extend(page["data"])
        pages_during_sync += not done.is_set()
        if page["page"]["next_cursor"] is None:
            break
        params["cursor"] = page["page"]["next_cursor"]
        time.sleep(0.02)  # keep the walk spread over the sync
    writer.join(120)
    after = listed_ids(database_url)
    assert outcome[0]["status"] == "succeeded"
    assert outcome[0]["changed"] > 0
    assert pages_during_sync >= 3, "the walk must overlap the sync"
    ids = [d["diamond_id"] for d in walked]
    assert len(ids) == len(set(ids)), "no stone twice"
    keys = [(Decimal(d["carats"]), d["diamond_id"]) for d in walked]
    assert keys == sorted(keys), "in order"
    assert (before & after) <= set(ids), "every stone listed throughout was returned"
