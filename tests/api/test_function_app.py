"""The Azure entry point: the HTTP function hands requests to the same FastAPI app, with the durable
client binding available to routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import TypeVar

import azure.functions as func
import pytest

import function_app
from api import functions
from api.deps import durable_client
from local_host.host import indexed

T = TypeVar("T")

# What the host passes for a durableClient binding (the SDK turns it into a client object).
BINDING = json.dumps(
    {
        "taskHubName": "caratflowtest",
        "creationUrls": {},
        "managementUrls": {},
        "rpcBaseUrl": "http://127.0.0.1:17071/durabletask/",
    }
)


async def closing(call: Awaitable[T]) -> T:
    """Await `call`, then close the app's pool in the same event loop. The Functions worker's loop lives
    as long as the process; a test's asyncio.run ends with it, and cancelling a pool's tasks that are
    still connecting could wait forever (it hung a CI run)."""
    try:
        return await call
    finally:
        if functions._middleware is not None:
            await functions._middleware._app.app.state.api.close()


@pytest.fixture
def http_api(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOCAL_SECRETS_PATH", str(tmp_path / "secrets.json"))
    from shared.config import get_settings

    get_settings.cache_clear()
    monkeypatch.setattr(functions, "_middleware", None)
    builder = next(f for f in indexed(function_app.app) if f.get_function_name() == "http_api")
    yield builder.get_user_function()
    get_settings.cache_clear()


def test_http_function_serves_the_fastapi_app(http_api) -> None:
    seen = []
    binding = BINDING
    original = functions._asgi

    def spy():
        seen.append(durable_client.get())
        return original()

    functions._asgi = spy
    try:
        ready = func.HttpRequest("GET", "http://localhost/api/ready", headers={}, body=b"")
        nowhere = func.HttpRequest(
            "GET", "http://localhost/api/v1/nowhere", headers={"x-correlation-id": "az-1"}, body=b""
        )

        async def both() -> tuple[func.HttpResponse, func.HttpResponse]:
            first = await http_api(req=ready, context=None, client=binding)
            return first, await http_api(req=nowhere, context=None, client=binding)

        response, missing = asyncio.run(closing(both()))
    finally:
        functions._asgi = original
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ready", "checks": {"database": "up", "secret_store": "up"}}
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert json.loads(missing.get_body())["correlation_id"] == "az-1"
    assert [client._orchestration_bindings.task_hub_name for client in seen] == ["caratflowtest"] * 2
    assert durable_client.get() is None


@pytest.mark.parametrize(
    ("signed_for", "sent_to", "status"),
    [
        ("/api/v1/runs/a%0Ab", "/api/v1/runs/a%0Ab", 400),  # authenticated, then an invalid run id
        ("/api/v1/runs/ab", "/api/v1/runs/a%0Ab", 401),  # the host's URL parsing would drop the LF
        ("/api/v1/runs/a%25b", "/api/v1/runs/a%2525b", 401),  # decoded twice, these would be equal
        ("/api/v1/runs/a%2525b", "/api/v1/runs/a%2525b", 400),
    ],
)
def test_azure_requests_are_verified_over_the_path_as_sent(http_api, settings, tmp_path, signed_for, sent_to, status):
    from caratflow_client.signing import sign_request
    from shared.access import keys
    from shared.db.connect import open_pool
    from shared.secrets import open_secret_store

    store = open_secret_store(settings.model_copy(update={"local_secrets_path": tmp_path / "secrets.json"}))
    pool = open_pool(settings)
    try:
        issued = keys.create_key(pool, store, "ops", ["admin"])
    finally:
        pool.close()
    signature = sign_request(key_id=issued.key_id, secret=issued.secret, method="GET", path=signed_for)
    request = func.HttpRequest(
        "GET", f"http://localhost{sent_to}", headers={"authorization": signature.header()}, body=b""
    )
    response = asyncio.run(closing(http_api(req=request, context=None, client=BINDING)))
    assert response.status_code == status, response.get_body()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://caratflow.example/api/v1/runs/a%0Ab?x=1", b"/api/v1/runs/a%0Ab"),
        ("http://localhost:7071/api/v1/diamonds", b"/api/v1/diamonds"),
        ("https://h.example", b"/"),
        ("https://h.example/p%2525q#frag", b"/p%2525q"),
    ],
)
def test_url_path_keeps_the_escapes(url, path) -> None:
    assert functions.url_path(url) == path
