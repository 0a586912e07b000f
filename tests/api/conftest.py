"""The API served for real: uvicorn on 127.0.0.1, the embedded PostgreSQL, a local secret store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from ports import free_port
from served import serve

from api.app import create_app
from api.request_head import http_protocol
from caratflow_client import CaratflowClient
from shared.access import keys
from shared.config import Settings
from shared.secrets import open_secret_store


@dataclass
class Served:
    url: str
    app: object
    settings: Settings


@pytest.fixture
def api_settings(settings: Settings, tmp_path) -> Settings:
    return settings.model_copy(
        update={
            "local_secrets_path": tmp_path / "secrets.json",
            "api_search_rate_per_minute": 100_000,
            "api_search_burst": 10_000,
            "api_auth_failure_burst": 1000,
        }
    )


@pytest.fixture
def secret_store(api_settings: Settings):
    return open_secret_store(api_settings)


@pytest.fixture
def api(api_settings: Settings, database_url: str) -> Iterator[Served]:
    port = free_port()
    app = create_app(api_settings, url=database_url)
    server, thread = serve(app, port, http=http_protocol(api_settings))  # the protocol `caratflow serve` uses
    try:
        yield Served(f"http://127.0.0.1:{port}", app, api_settings)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def issue_key(pool, secret_store):
    """Issue a key: `issue_key("acme", ["search"])` -> IssuedSecret."""
    return lambda client_id="acme", scopes=("search",), **kw: keys.create_key(
        pool, secret_store, client_id, list(scopes), **kw
    )


@pytest.fixture
def search_key(issue_key):
    return issue_key("storefront", ["search"])


@pytest.fixture
def client(api: Served, search_key) -> Iterator[CaratflowClient]:
    with CaratflowClient(api.url, search_key.key_id, search_key.secret) as running:
        yield running


@pytest.fixture
def raw(api: Served) -> Iterator[httpx.Client]:
    """Unsigned HTTP to the served API."""
    with httpx.Client(base_url=api.url, timeout=10) as http:
        yield http
