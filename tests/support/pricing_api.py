"""The pricing endpoints on a synced catalogue, for tests: the API served with the local host's durable client,
and clients holding a pricing key, an admin-only key and a search key. Import `pricing_api_fixture` into a
test module to use it as `pricing_api`: it builds on the root conftest's fixtures only, so that tests/api and
tests/cli both can."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from ports import free_port
from psycopg.rows import dict_row
from served import serve

from api.app import create_app
from caratflow_client import CaratflowClient
from cli.main import main as cli_main
from local_host.client import AsyncLocalClient
from local_host.runtime import LocalRuntime
from shared.access import keys
from shared.config import Settings
from shared.db.pools import Pool
from shared.pricing.repository import rule_set
from shared.secrets import open_secret_store


@dataclass
class PricingApi:
    url: str
    pricing: CaratflowClient  # a key of client "pricer" with the pricing scope only
    admin: CaratflowClient  # admin without pricing
    search: CaratflowClient
    conn: psycopg.Connection
    environ: dict[str, str] = field(default_factory=dict)  # what `caratflow pricing` needs for the pricing key
    key_id: str = ""


@pytest.fixture(name="pricing_api")
def pricing_api_fixture(
    settings: Settings,
    pool: Pool,
    database_url: str,
    runtime: LocalRuntime,
    run_sync: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> Iterator[PricingApi]:
    """A catalogue synced from the feed emulator (one full run), and the API over it."""
    run_sync("nivoda-natural")
    served_settings = settings.model_copy(
        update={
            "local_secrets_path": tmp_path / "secrets.json",
            "api_mutation_rate_per_minute": 100_000,
            "api_mutation_burst": 10_000,
            "api_search_rate_per_minute": 100_000,
            "api_search_burst": 10_000,
        }
    )
    store = open_secret_store(served_settings)
    issued = {
        scope: keys.create_key(pool, store, name, [scope])
        for scope, name in (("pricing", "pricer"), ("admin", "operator"), ("search", "storefront"))
    }
    port = free_port()
    app = create_app(served_settings, url=database_url, durable=AsyncLocalClient(runtime.client))
    server, thread = serve(app, port)
    url = f"http://127.0.0.1:{port}"
    clients = {scope: CaratflowClient(url, key.key_id, key.secret) for scope, key in issued.items()}
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            yield PricingApi(
                url,
                clients["pricing"],
                clients["admin"],
                clients["search"],
                conn,
                environ={
                    "CARATFLOW_API_URL": url,
                    "CARATFLOW_KEY_ID": issued["pricing"].key_id,
                    "CARATFLOW_API_SECRET": issued["pricing"].secret,
                },
                key_id=issued["pricing"].key_id,
            )
    finally:
        for client in clients.values():
            client.close()
        server.should_exit = True
        thread.join(10)


def wait_for_job(client: CaratflowClient, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """The job once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.repricing_job(job_id)
        if job["finished"]:
            return job
        time.sleep(0.1)
    raise AssertionError(f"repricing job {job_id} never ended: {job}")


def assert_priced_under(conn: psycopg.Connection, version: int) -> int:
    """Every stone carries `version` and the price RuleSet.price gives it; how many stones there are."""
    rules = rule_set(conn, version)
    with conn.cursor(row_factory=dict_row) as cur:
        stones = cur.execute("SELECT * FROM diamonds").fetchall()
    for row in stones:
        priced = rules.price(SimpleNamespace(**row))
        per_carat = (Decimal(priced.price_cents) / row["carats"]).quantize(Decimal(1), ROUND_HALF_UP)
        found = (row["pricing_version"], row["pricing_rule_id"], row["price_cents"], row["price_per_carat_cents"])
        assert found == (version, priced.rule_id, priced.price_cents, per_carat), row["diamond_id"]
    return len(stones)


def pricing_cli(
    api: PricingApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`caratflow pricing ...` in-process with the pricing key; (exit code, stdout, stderr)."""
    for name, value in api.environ.items():
        monkeypatch.setenv(name, value)
    code = cli_main(["pricing", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
