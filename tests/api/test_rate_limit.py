"""Rate limits hold across instances: two `caratflow serve` processes share one budget per client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from ports import free_port

from caratflow_client import CaratflowAuth
from shared.db.rows import one

RATE_PER_MINUTE, BURST = 120, 10


@pytest.fixture
def two_servers(api_settings, database_url, search_key, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOCAL_SECRETS_PATH": str(api_settings.local_secrets_path),
        "API_SEARCH_RATE_PER_MINUTE": str(RATE_PER_MINUTE),
        "API_SEARCH_BURST": str(BURST),
    }
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--drain-seconds", "0"],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    deadline = time.monotonic() + 30
    for url in urls:
        while not _ready(url):
            assert time.monotonic() < deadline, "servers did not start"
            time.sleep(0.1)
    yield urls
    for process in processes:
        process.terminate()
        process.wait(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/ready").status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def test_two_instances_never_admit_more_than_one_budget(two_servers, search_key) -> None:
    auth = CaratflowAuth(search_key.key_id, search_key.secret)
    clients = [httpx.Client(base_url=url, auth=auth) for url in two_servers]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda n: clients[n % 2].get("/api/v1/diamonds", params={"limit": 1}), range(80)))
    elapsed = time.monotonic() - started
    admitted = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(admitted) + len(limited) == len(responses)
    assert len(admitted) <= BURST + RATE_PER_MINUTE / 60 * elapsed + 1
    assert len(admitted) >= BURST
    assert {r.url.port for r in admitted} == {int(u.rsplit(":", 1)[1]) for u in two_servers}
    refusal = limited[0]
    assert int(refusal.headers["retry-after"]) >= 1
    assert refusal.headers["ratelimit-limit"] == str(RATE_PER_MINUTE)
    assert refusal.headers["ratelimit-remaining"] == "0"
    assert refusal.json()["type"] == "urn:caratflow:problem:rate-limited"
    assert int(admitted[0].headers["ratelimit-remaining"]) >= 0
    for client in clients:
        client.close()


def test_search_and_mutation_budgets_are_separate(database_url) -> None:
    """The gate spends `api:search:<client>` for reads and `api:mutation:<client>` for writes."""
    with psycopg.connect(database_url, autocommit=True) as conn:

        def admit(budget: str) -> bool:
            (admitted,) = one(
                conn.execute(
                    "SELECT admitted FROM caratflow_admit(%s, %s, 2)", (budget, timedelta(minutes=1))
                ).fetchone()
            )
            answer: bool = admitted
            return answer

        assert [admit("api:search:acme") for _ in range(3)] == [True, True, False]
        assert [admit("api:mutation:acme") for _ in range(3)] == [True, True, False]
        assert admit("api:search:other") is True
