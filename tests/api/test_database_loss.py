"""The database goes away under the served API, for real, and comes back.

Searches answer a fast 503 problem with Retry-After while it is gone (not a 500, not a 30 s wait),
/api/ready names the database as the dependency that is down, /api/health stays up, and searches
answer again within seconds of the restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from own_cluster import Cluster, own_cluster
from ports import free_port
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests
from pydantic import SecretStr
from served import serve

from api.app import create_app
from caratflow_client.client import CaratflowAuth
from shared.access.keys import IssuedSecret, create_key
from shared.config import Settings
from shared.db.connect import open_pool

PROBLEM = "application/problem+json"


def timed(call, *args, **kwargs) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call(*args, **kwargs)
    return response, time.monotonic() - started


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    with own_cluster(tmp_path) as running:
        yield running


@pytest.fixture
def served_on_cluster(api_settings: Settings, cluster: Cluster, secret_store) -> Iterator[tuple[str, IssuedSecret]]:
    settings = api_settings.model_copy(update={"database_url": SecretStr(cluster.url)})
    with open_pool(settings, name="caratflow-test-keys") as pool:
        key = create_key(pool, secret_store, "storefront", ["search"])
    port = free_port()
    server, thread = serve(create_app(settings, url=cluster.url), port)
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        thread.join(10)


def test_searches_answer_503_fast_while_the_database_is_down_and_200_soon_after_it_returns(
    served_on_cluster, cluster: Cluster
) -> None:
    url, key = served_on_cluster
    # A client timeout well below the pool's old 30 s wait, so the old behaviour fails instead of hanging.
    with (
        httpx.Client(base_url=url, auth=CaratflowAuth(key.key_id, key.secret), timeout=8) as signed,
        httpx.Client(base_url=url, timeout=8) as unsigned,
    ):
        assert signed.get("/api/v1/diamonds").status_code == 200  # the pool holds live connections now
        assert unsigned.get("/api/ready").json()["checks"] == {"database": "up", "secret_store": "up"}

        cluster.stop()
        for _ in range(4):
            response, seconds = timed(signed.get, "/api/v1/diamonds")
            assert response.status_code == 503, response.text
            assert seconds < 2.5
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["type"] == "urn:caratflow:problem:database-unavailable"
            assert int(response.headers["retry-after"]) >= 1

        ready, seconds = timed(unsigned.get, "/api/ready")
        assert ready.status_code == 503
        assert seconds < 1.5
        assert ready.json()["checks"] == {"database": "down", "secret_store": "up"}
        assert unsigned.get("/api/health").status_code == 200

        cluster.start()
        restarted = time.monotonic()
        while (status := signed.get("/api/v1/diamonds").status_code) != 200:
            assert status == 503
            assert time.monotonic() - restarted < 3, "the API did not notice the database is back"
        assert unsigned.get("/api/ready").json()["checks"] == {"database": "up", "secret_store": "up"}


def test_a_database_down_when_the_api_starts_gives_503_not_a_hang(served_on_cluster, cluster: Cluster) -> None:
    url, key = served_on_cluster
    cluster.stop()  # before the first request: the pool opens while the database is gone
    with httpx.Client(base_url=url, auth=CaratflowAuth(key.key_id, key.secret), timeout=8) as signed:
        response, seconds = timed(signed.get, "/api/v1/diamonds")
        assert response.status_code == 503
        assert seconds < 2.5
        cluster.start()
        restarted = time.monotonic()
        while signed.get("/api/v1/diamonds").status_code != 200:
            assert time.monotonic() - restarted < 3


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), 503),
        (psycopg.OperationalError("connection failed: No such file or directory"), 503),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), 503),
        (psycopg.errors.TooManyConnections("too many clients already"), 503),
        (PoolTimeout("couldn't get a connection after 1.00 sec"), 503),
        (TooManyRequests("the pool has already 10 requests waiting"), 503),
        (PoolClosed("the pool is closed"), 503),
        # Our mistakes, not an outage: a 500, and no Retry-After that would invite the same request again.
        (psycopg.errors.SyntaxError("syntax error at or near"), 500),
        (psycopg.errors.DataError("invalid byte sequence"), 500),
        (psycopg.errors.LockNotAvailable("could not obtain lock"), 500),
        (psycopg.errors.StatementTooComplex("statement is too complex"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_only_an_unreachable_database_is_a_503(
    api_settings: Settings, database_url: str, error, status, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(api_settings, url=database_url)

    async def fails() -> None:
        raise error

    app.add_api_route("/api/test-only/fails", fails)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            return await http.get("/api/test-only/fails")

    response = asyncio.run(call())
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    assert ("retry-after" in response.headers) == (status == 503)
    # Any: `error` is the log call's extra field, an attribute LogRecord does not declare.
    logged: list[Any] = [record for record in caplog.records if record.getMessage() == "database unavailable"]
    assert [record.error.split(":")[0] for record in logged] == ([type(error).__name__] if status == 503 else [])
