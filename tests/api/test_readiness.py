"""/api/ready names the dependency that is down, says nothing more, and cannot be used to hammer one.

The database going away for real is in test_database_loss.py.
"""

from __future__ import annotations

import asyncio
import threading

import httpx

from api.app import create_app
from shared.config import Settings
from shared.secrets import CachedSecretStore, LocalSecretStore


def test_ready_names_a_corrupt_secrets_file_as_the_secret_store_down_and_nothing_more(
    api, raw: httpx.Client, api_settings: Settings
) -> None:
    api_settings.local_secrets_path.write_text("{not json")
    response = raw.get("/api/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unready", "checks": {"database": "up", "secret_store": "down"}}
    assert response.headers["retry-after"]
    assert raw.get("/api/health").status_code == 200


class CountingStore(LocalSecretStore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pings = 0
        self._count_lock = threading.Lock()

    def ping(self) -> None:
        with self._count_lock:
            self.pings += 1
        super().ping()


def test_concurrent_readiness_probes_share_one_secret_store_check(api_settings: Settings, database_url: str) -> None:
    store = CountingStore(api_settings.local_secrets_path)
    app = create_app(api_settings, secrets=CachedSecretStore(store, ttl_seconds=60), url=database_url)

    async def probe_many() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            first = await asyncio.gather(*(http.get("/api/ready") for _ in range(20)))
            again = await asyncio.gather(*(http.get("/api/ready") for _ in range(20)))
            await app.state.api.close()
            return [*first, *again]

    responses = asyncio.run(probe_many())
    assert {response.status_code for response in responses} == {200}
    assert store.pings == 1  # 40 probes, one read of the store (its answer is reused for a few seconds)
