"""Where the database is and how we reach it: one psycopg 3 pool per process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from shared.config import Settings
from shared.db import embedded, entra
from shared.db.pools import Pool, pool_options
from shared.telemetry import trace_connection


def database_url(settings: Settings) -> str:
    """DATABASE_URL when set, else the embedded cluster (started on first use)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded.start(settings.embedded_pg_dir)


def connection_arguments(settings: Settings, name: str, *, credential: Any = None) -> Callable[[], dict[str, Any]]:
    """psycopg's connection arguments, computed per connection: the application name, the longest wait
    to connect, and with DATABASE_AUTH=entra a fresh Entra token as the password (shared/db/entra.py)."""
    password = entra.token_password(credential) if settings.database_auth == "entra" else None
    # application_name makes our sessions visible in pg_stat_activity for operators. Without
    # connect_timeout, a server that drops packets holds a connection attempt for minutes.
    fixed = {"application_name": name, "connect_timeout": settings.db_connect_timeout_seconds}

    def arguments() -> dict[str, Any]:
        return fixed | ({"password": password()} if password else {})

    return arguments


def connect(settings: Settings, url: str, *, name: str = "caratflow", **kwargs: Any) -> psycopg.Connection:
    """One connection outside a pool (migrations, the CLI), signed in the same way as the pools."""
    return psycopg.connect(url, **connection_arguments(settings, name)(), **kwargs)


def open_pool(settings: Settings, *, url: str | None = None, name: str = "caratflow", credential: Any = None) -> Pool:
    """Open a pool and wait until it holds its minimum connections: DatabaseUnavailable (naming the
    database) after about one connection attempt's time, on a bad URL or a database that is down."""
    pool = Pool(
        url or database_url(settings),
        name=name,
        kwargs=connection_arguments(settings, name, credential=credential),
        # Queries get spans as children of the span they run in (shared/telemetry/tracing.py).
        configure=trace_connection,
        open=False,
        **pool_options(settings),
    )
    pool.open(wait=True, timeout=settings.db_connect_timeout_seconds)
    return pool


def open_migrated_pool(settings: Settings, *, name: str = "caratflow") -> Pool:
    """The usual start-up: find the database, bring its schema up to date, open the pool."""
    from shared.db.migrate import migrate

    url = database_url(settings)
    with connect(settings, url, name=name) as conn:
        migrate(conn)
    return open_pool(settings, url=url, name=name)
