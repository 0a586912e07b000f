"""Where the database is and how we reach it: one psycopg 3 pool per process."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from shared.config import Settings
from shared.db import embedded


def database_url(settings: Settings) -> str:
    """DATABASE_URL when set, else the embedded cluster (started on first use)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded.start(settings.embedded_pg_dir)


def open_pool(settings: Settings, *, url: str | None = None, name: str = "caratflow") -> ConnectionPool:
    """Open a pool and wait until it holds its minimum connections (fails fast on a bad URL)."""
    pool = ConnectionPool(
        url or database_url(settings),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        name=name,
        # application_name makes our sessions visible in pg_stat_activity for operators.
        kwargs={"application_name": name},
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool


def open_migrated_pool(settings: Settings, *, name: str = "caratflow") -> ConnectionPool:
    """The usual start-up: find the database, bring its schema up to date, open the pool."""
    import psycopg

    from shared.db.migrate import migrate

    url = database_url(settings)
    with psycopg.connect(url) as conn:
        migrate(conn)
    return open_pool(settings, url=url, name=name)
