"""Fixtures for end-to-end sync tests: the emulator over HTTP, the local host, a fast policy."""

from __future__ import annotations

import pytest

from emulator.server import RunningEmulator
from local_host.runtime import LocalRuntime


def sync_settings(settings, feed: RunningEmulator, **overrides):
    return settings.model_copy(
        update={
            "nivoda_endpoint": feed.url,
            "nivoda_username": feed.config.username,
            "nivoda_password": feed.config.password,
            "plan_target_partition_size": 400,
            "sync_batch_size": 4,
            "sync_fetch_retry_first_seconds": 0.2,
            "sync_consolidation_batch": 500,
            "feed_timeout_seconds": 2.0,
            **overrides,
        }
    )


@pytest.fixture
def feed():
    with RunningEmulator(size=3000, seed=21) as running:
        yield running


@pytest.fixture
def sync_settings_for(settings, feed):
    """Settings for a sync against this test's emulator, with overrides."""
    return lambda **overrides: sync_settings(settings, feed, **overrides)


@pytest.fixture
def runtime(settings, pool, feed):
    with LocalRuntime(sync_settings(settings, feed), pool=pool, activity_workers=4) as running:
        yield running


@pytest.fixture
def run_sync(runtime):
    """Start a run of `feed` through the local host and wait for its summary."""
    from orchestrators.sync_run import sync_instance_id
    from orchestrators.triggers import sync_request

    def run(feed: str, kind: str = "full", timeout: float = 180) -> dict:
        instance = runtime.client.start_new("sync_run", sync_instance_id(feed), sync_request(feed, kind, "cli"))
        status = runtime.client.wait_for_completion(instance, timeout=timeout)
        assert status.runtime_status == "Completed", status.error
        return status.output

    return run


@pytest.fixture
def feed_ids(feed):
    """Every stone id the emulator serves for a feed right now, paged straight from the emulator."""
    import httpx

    query = (
        "query($q: DiamondQuery, $o: Int) "
        "{ diamonds_by_query(query: $q, offset: $o, limit: 50) { items { diamond { id } } } }"
    )

    def ids(labgrown: bool) -> set[str]:
        token = feed.issue_token()
        found, offset = set(), 0
        while True:
            answer = httpx.post(
                feed.url,
                json={"query": query, "variables": {"q": {"labgrown": labgrown}, "o": offset}},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            items = answer["data"]["diamonds_by_query"]["items"]
            if not items:
                return found
            found |= {item["diamond"]["id"] for item in items}
            offset += len(items)

    return ids


@pytest.fixture
def listed(database_url):
    """Stone ids listed (not delisted) in the catalogue for a feed."""
    import psycopg

    def ids(feed_name: str) -> set[str]:
        with psycopg.connect(database_url) as conn:
            return {
                r[0]
                for r in conn.execute(
                    "SELECT stone_id FROM diamonds WHERE feed = %s AND delisted_at IS NULL", (feed_name,)
                )
            }

    return ids
