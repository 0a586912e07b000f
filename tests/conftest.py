"""Shared fixtures: a real embedded PostgreSQL, a fresh migrated database per test, the feed emulator,
Azurite when node is available."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

# Tests never read a developer's local.settings.json.
os.environ["CARATFLOW_LOCAL_SETTINGS"] = str(Path(__file__).parent / "no-local-settings.json")
# CLI commands run in-process log to a file (cli/terminal.py): one of the session's own, not the project's.
os.environ.setdefault("CARATFLOW_LOG_DIR", tempfile.mkdtemp(prefix="caratflow-test-logs-"))

import catalogue_rows
from ports import free_port

from emulator.server import RunningEmulator
from local_host.runtime import LocalRuntime
from shared.config import Settings, load_settings
from shared.db import embedded
from shared.db.connect import open_pool
from shared.db.migrate import migrate

# Fixtures shared by test folders that do not share a conftest (tests/support).
pytest_plugins = ["operator_api"]

PROJECT = Path(__file__).resolve().parent.parent
TEMPLATE_DB = "caratflow_template"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server: TEST_DATABASE_URL if given, else a throwaway embedded cluster."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    data_dir = tmp_path_factory.mktemp("pg") / "data"
    url = embedded.start(data_dir)
    try:
        yield url
    finally:
        embedded.stop(data_dir)


def _with_database(url: str, name: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=name)


@pytest.fixture(scope="session")
def template_url(pg_server: str) -> str:
    """A migrated database that every test's database is cloned from (cloning is ~50 ms)."""
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    url = _with_database(pg_server, TEMPLATE_DB)
    with psycopg.connect(url) as conn:
        migrate(conn)
    return url


def create_database(pg_server: str, *, template: str | None) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
    return _with_database(pg_server, name)


@pytest.fixture
def database_url(pg_server: str, template_url: str) -> str:
    """A fresh, migrated database of this test's own."""
    return create_database(pg_server, template=TEMPLATE_DB)


@pytest.fixture
def empty_database_url(pg_server: str) -> str:
    """A fresh database with no schema at all."""
    return create_database(pg_server, template=None)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        database_url=database_url,
        scan_store_dir=tmp_path / "scans",
        feed_backoff_base_seconds=0.01,
        feed_backoff_max_seconds=0.05,
        feed_rate_limit_per_second=1000,
    )


@pytest.fixture
def pool(settings: Settings):
    pool = open_pool(settings, name="caratflow-test")
    yield pool
    pool.close()


def azurite_binary() -> Path | None:
    local = PROJECT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return local
    found = shutil.which("azurite-blob")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a real Azurite blob service on 127.0.0.1."""
    binary = azurite_binary()
    if binary is None:
        # Only machines without node reach this; dev.py installs Azurite wherever npm exists.
        pytest.skip("Azurite not installed (needs node + npm; `python3 dev.py test` installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(workdir),
            "--silent",
            "--skipApiVersionCheck",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"Azurite did not start: {output}") from exc
            time.sleep(0.1)
    account = "devstoreaccount1"
    # Azurite's well-known development key, published with Azurite itself.
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    try:
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{account};"
        )
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def new_database(pg_server: str, template_url: str):
    """Make further fresh, migrated databases (e.g. one per trial)."""
    return lambda: create_database(pg_server, template=TEMPLATE_DB)


# --- a sync against the feed emulator, on the local host (tests/sync, tests/api)


def sync_settings(settings, feed: RunningEmulator, **overrides):
    return settings.model_copy(
        update={
            "nivoda_endpoint": feed.url,
            "nivoda_username": feed.config.username,
            "nivoda_password": feed.config.password,
            "plan_target_partition_size": 400,
            "sync_batch_size": 4,
            "sync_fetch_retry_first_seconds": 0.2,
            "sync_consolidation_batch": 500,
            "feed_timeout_seconds": 2.0,
            **overrides,
        }
    )


@pytest.fixture
def feed():
    with RunningEmulator(size=3000, seed=21) as running:
        yield running


@pytest.fixture
def sync_settings_for(settings, feed):
    """Settings for a sync against this test's emulator, with overrides."""
    return lambda **overrides: sync_settings(settings, feed, **overrides)


@pytest.fixture
def runtime(settings, pool, feed):
    with LocalRuntime(sync_settings(settings, feed), pool=pool, activity_workers=4) as running:
        yield running


@pytest.fixture
def run_sync(runtime):
    """Start a run of `feed` through the local host and wait for its summary."""
    from shared.runs.starts import sync_instance_id, sync_request

    def run(feed: str, kind: str = "full", timeout: float = 180) -> dict[str, Any]:
        instance = runtime.client.start_new("sync_run", sync_instance_id(feed), sync_request(feed, kind, "cli"))
        status = runtime.client.wait_for_completion(instance, timeout=timeout)
        assert status.runtime_status == "Completed", status.error
        output: dict[str, Any] = status.output
        return output

    return run


@pytest.fixture
def catalogue(database_url: str) -> list[dict[str, Any]]:
    """1,500 listed stones of every grade, inserted straight into the catalogue (no sync)."""
    rows = catalogue_rows.make_rows(1500)
    catalogue_rows.insert(database_url, rows)
    return rows
