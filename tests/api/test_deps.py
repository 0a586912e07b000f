"""The API's dependencies (api/deps.py): the request's pooled connection goes back to the pool when
the handler returns, the caller check shares it, and the app imports no Azure entry module."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grimp
import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from ports import free_port

from api.app import create_app
from api.deps import AppState, Connection, SearchCaller
from api.problems import Problem
from caratflow_client.client import CaratflowAuth
from shared.config import Settings
from shared.db.rows import one

PROJECT = Path(__file__).resolve().parents[2]


class Checkouts:
    """Counts the connections taken from the app's pool and those not yet given back."""

    def __init__(self, app: FastAPI) -> None:
        self.app, self.taken, self.out = app, 0, 0

    async def watch(self) -> None:
        pool = await self.app.state.api.db()
        getconn, putconn = pool.getconn, pool.putconn

        async def counted_getconn(timeout: float | None = None) -> Any:
            conn = await getconn(timeout)
            self.taken, self.out = self.taken + 1, self.out + 1
            return conn

        async def counted_putconn(conn: Any) -> None:
            self.out -= 1
            await putconn(conn)

        pool.getconn, pool.putconn = counted_getconn, counted_putconn


def call(app: FastAPI, checkouts: Checkouts, *paths: str, auth: httpx.Auth | None = None) -> list[httpx.Response]:
    """Requests through the app, then its pool closed in the same event loop (see test_function_app)."""

    async def run() -> list[httpx.Response]:
        try:
            await checkouts.watch()
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
                return [await http.get(path, auth=auth) for path in paths]
        finally:
            await app.state.api.close()

    return asyncio.run(run())


def test_the_connection_goes_back_to_the_pool_before_a_streamed_body(api_settings: Settings, database_url) -> None:
    app = create_app(api_settings, url=database_url)
    checkouts = Checkouts(app)
    seen: dict[str, Any] = {}

    async def streamed(state: AppState, conn: Connection) -> StreamingResponse:
        seen["handler"] = checkouts.out

        async def body() -> AsyncIterator[bytes]:
            seen["stream"] = checkouts.out
            async with state.connection() as own:
                yield str(one(await (await own.execute("SELECT 1")).fetchone())[0]).encode()

        return StreamingResponse(body())

    app.add_api_route("/api/test-only/streamed", streamed)
    (response,) = call(app, checkouts, "/api/test-only/streamed")
    assert response.status_code == 200
    assert response.content == b"1"
    assert seen == {"handler": 1, "stream": 0}
    assert (checkouts.taken, checkouts.out) == (2, 0)


def test_the_connection_goes_back_to_the_pool_when_the_handler_fails(api_settings: Settings, database_url) -> None:
    app = create_app(api_settings, url=database_url)
    checkouts = Checkouts(app)

    async def fails(conn: Connection) -> None:
        await conn.execute("SELECT 1")
        raise Problem(409, "conflict", "Not allowed now", "test", "none")

    app.add_api_route("/api/test-only/fails", fails)
    responses = call(app, checkouts, "/api/test-only/fails", "/api/test-only/fails")
    assert [response.status_code for response in responses] == [409, 409]
    assert (checkouts.taken, checkouts.out) == (2, 0)


def test_a_signed_request_checks_out_one_connection(api_settings: Settings, database_url, search_key) -> None:
    app = create_app(api_settings, url=database_url)
    checkouts = Checkouts(app)

    async def signed(caller: SearchCaller, conn: Connection) -> dict[str, str]:
        await conn.execute("SELECT 1")
        return {"client_id": caller.client_id}

    app.add_api_route("/api/v1/test-only/signed", signed)
    auth = CaratflowAuth(search_key.key_id, search_key.secret)
    signed_answer, search = call(app, checkouts, "/api/v1/test-only/signed", "/api/v1/diamonds?limit=1", auth=auth)
    assert signed_answer.status_code == 200, signed_answer.text
    assert signed_answer.json() == {"client_id": "storefront"}
    assert search.status_code == 200, search.text
    # The key record, the nonce, the rate budget, the search and the server keys (first read by the
    # search, for its media links) were all read on the request's connection: one each.
    assert (checkouts.taken, checkouts.out) == (2, 0)


def test_an_unreachable_database_is_the_same_503_problem(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={"db_pool_timeout_seconds": 0.3})
    app = create_app(settings, url=f"postgresql://caratflow@127.0.0.1:{free_port()}/nowhere")

    async def needs(conn: Connection) -> None:
        raise AssertionError("no connection to hand over")

    app.add_api_route("/api/test-only/needs", needs)
    (response,) = call(app, Checkouts(app), "/api/test-only/needs")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:caratflow:problem:database-unavailable"
    assert int(response.headers["retry-after"]) >= 1


def test_the_app_does_not_import_the_azure_entry_modules() -> None:
    # At run time, in a fresh interpreter (a test process has imported everything already)...
    probe = "import sys, api.app; print(sorted(m for m in ('api.functions', 'function_app') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr
    # ...and in the source, imports inside functions included: no chain leads there, so no circle back.
    graph = grimp.build_graph("api", include_external_packages=True, cache_dir=None)
    assert graph.find_shortest_chain(importer="api.app", imported="api.functions") is None
    assert graph.find_shortest_chain(importer="api.deps", imported="api.functions") is None
    assert "function_app" not in graph.modules  # no module of the API imports it at all
