"""Fixtures for end-to-end sync tests: what the emulator serves and what the catalogue lists."""

from __future__ import annotations

import pytest


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
        found, offset = set[str](), 0
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
