"""Where the database is and how we reach it: one psycopg 3 pool per process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from shared.config import Settings
from shared.db import embedded, entra
from shared.telemetry import trace_connection


def database_url(settings: Settings) -> str:
    """DATABASE_URL when set, else the embedded cluster (started on first use)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded.start(settings.embedded_pg_dir)


def connection_arguments(
    settings: Settings, name: str, *, credential: Any = None
) -> Callable[[], dict[str, Any]]:
    """psycopg's connection arguments, computed per connection: the application name, and with
    DATABASE_AUTH=entra a fresh Entra token as the password (shared/db/entra.py)."""
    password = entra.token_password(credential) if settings.database_auth == "entra" else None

    def arguments() -> dict[str, Any]:
        # application_name makes our sessions visible in pg_stat_activity for operators.
        return {"application_name": name} | ({"password": password()} if password else {})

    return arguments


def connect(settings: Settings, url: str, *, name: str = "caratflow", **kwargs: Any) -> psycopg.Connection:
    """One connection outside a pool (migrations, the CLI), signed in the same way as the pools."""
    return psycopg.connect(url, **connection_arguments(settings, name)(), **kwargs)


def open_pool(
    settings: Settings, *, url: str | None = None, name: str = "caratflow", credential: Any = None
) -> ConnectionPool:
    """Open a pool and wait until it holds its minimum connections (fails fast on a bad URL)."""
    pool = ConnectionPool(
        url or database_url(settings),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        name=name,
        kwargs=connection_arguments(settings, name, credential=credential),
        # Queries get spans as children of the span they run in (shared/telemetry/tracing.py).
        configure=trace_connection,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool


def open_migrated_pool(settings: Settings, *, name: str = "caratflow") -> ConnectionPool:
    """The usual start-up: find the database, bring its schema up to date, open the pool."""
    from shared.db.migrate import migrate

    url = database_url(settings)
    with connect(settings, url, name=name) as conn:
        migrate(conn)
    return open_pool(settings, url=url, name=name)
