"""The operator API on a local host, for tests: the `ops` fixture (the API served with the local host's
durable client, and a client holding an admin key), waiting for a run, and `caratflow admin` in-process.

A plugin of the root conftest (`pytest_plugins`), so `ops` is a fixture for every test that can reach
the API fixtures it builds on (tests/api/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ports import free_port
from psycopg_pool import ConnectionPool
from served import serve

from api.app import create_app
from caratflow_client import CaratflowClient
from cli.main import main as cli_main
from local_host.client import AsyncLocalClient
from local_host.runtime import LocalRuntime
from shared.access.keys import IssuedSecret
from shared.config import Settings


class OperatorClient(CaratflowClient):
    """A client holding an admin key, with the local host behind the API and what `caratflow admin` needs."""

    environ: dict[str, str]
    runtime: LocalRuntime


@pytest.fixture
def ops(
    api_settings: Settings,
    sync_settings_for: Callable[..., Settings],
    pool: ConnectionPool,
    database_url: str,
    issue_key: Callable[..., IssuedSecret],
) -> Iterator[OperatorClient]:
    """The API with a local host behind it, and a client holding an admin key; the client carries
    the local host (`.runtime`) and the environment `caratflow admin` needs (`.environ`)."""
    settings = sync_settings_for(
        sync_min_success_share=0.5, sync_fetch_attempts=2, sync_fetch_retry_first_seconds=0.1, feed_max_attempts=2
    ).model_copy(update={"local_secrets_path": api_settings.local_secrets_path})
    admin = issue_key("operator", ["admin"])
    with LocalRuntime(settings, pool=pool) as runtime:
        port = free_port()
        server, thread = serve(create_app(settings, url=database_url, durable=AsyncLocalClient(runtime.client)), port)
        try:
            client = OperatorClient(f"http://127.0.0.1:{port}", admin.key_id, admin.secret)
            with client:
                client.environ = {
                    "CARATFLOW_API_URL": f"http://127.0.0.1:{port}",
                    "CARATFLOW_KEY_ID": admin.key_id,
                    "CARATFLOW_API_SECRET": admin.secret,
                }
                client.runtime = runtime
                yield client
        finally:
            server.should_exit = True
            thread.join(10)


def wait_for(client: CaratflowClient, run_id: str, statuses: tuple[str, ...], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = client.run(run_id)
        if shown["run"]["status"] in statuses:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never reached {statuses}: {shown['run']}")


def admin_cli(
    client: OperatorClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    for name, value in client.environ.items():
        monkeypatch.setenv(name, value)
    code = cli_main(["admin", *args])
    return code, capsys.readouterr().out
