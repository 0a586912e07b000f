"""The Azure entry point: the HTTP function hands requests to the same FastAPI app, with the durable
client binding available to routes."""

from __future__ import annotations

import asyncio
import json

import azure.functions as func
import pytest

import function_app
from api import functions
from local_host.host import indexed


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
    # What the host passes for a durableClient binding (the SDK turns it into a client object).
    binding = json.dumps(
        {
            "taskHubName": "caratflowtest",
            "creationUrls": {},
            "managementUrls": {},
            "rpcBaseUrl": "http://127.0.0.1:17071/durabletask/",
        }
    )
    original = functions._asgi

    def spy():
        seen.append(functions.durable_client.get())
        return original()

    functions._asgi = spy
    try:
        ready = func.HttpRequest("GET", "http://localhost/api/ready", headers={}, body=b"")
        nowhere = func.HttpRequest(
            "GET", "http://localhost/api/v1/nowhere", headers={"x-correlation-id": "az-1"}, body=b""
        )

        async def both():
            first = await http_api(req=ready, context=None, client=binding)
            return first, await http_api(req=nowhere, context=None, client=binding)

        response, missing = asyncio.run(both())
    finally:
        functions._asgi = original
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ready", "checks": {"database": "up", "secret_store": "up"}}
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert json.loads(missing.get_body())["correlation_id"] == "az-1"
    assert [client._orchestration_bindings.task_hub_name for client in seen] == ["caratflowtest"] * 2
    assert functions.durable_client.get() is None
