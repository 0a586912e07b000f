"""bench_api's catalogue: built by the real main job into a database that is given, kept or thrown away."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from bench_sync import full_sync, settings_for
from common import emulator_process, progress, throwaway_database

from local_host.runtime import LocalRuntime
from shared.config import Settings, load_settings
from shared.db import embedded
from shared.db.migrate import migrate
from shared.db.rows import one


def build_catalogue(database: str, size: int) -> None:
    """The real main job: the emulator in its own process, a full sync of both feeds (as bench_sync)."""
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as folder,
        emulator_process(size, 7, "--short-page-rate", "0") as (url, _),
    ):
        settings = settings_for(database, url, Path(folder), plan_target_partition_size=max(1000, size // 100))
        progress(f"full sync of {size:,} stones (both feeds, emulator in its own process)...")
        with LocalRuntime(settings, activity_workers=6) as runtime:
            result = full_sync(runtime)
    progress(f"synced {result['stones']:,} stones in {result['wall']:.0f} s; VACUUM ANALYZE...")
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    progress(f"catalogue built in {time.perf_counter() - started:.0f} s")


def listed_stones(database: str) -> int:
    with psycopg.connect(database) as conn:
        (count,) = one(conn.execute("SELECT count(*) FROM diamonds WHERE delisted_at IS NULL").fetchone())
    listed: int = count
    return listed


@contextmanager
def catalogue(args: argparse.Namespace) -> Iterator[str]:
    """A database holding the catalogue: given (--database), kept between runs (--keep), or throwaway."""
    if args.database:
        with psycopg.connect(args.database) as conn:
            migrate(conn)
        progress(f"reusing the catalogue at --database ({listed_stones(args.database):,} listed stones)")
        yield args.database
        return
    if args.keep:
        folder = Path(args.keep).resolve()
        database = embedded.start(folder)
        try:
            with psycopg.connect(database) as conn:
                migrate(conn)
            stones = listed_stones(database)
            if stones == 0:
                build_catalogue(database, args.size)
            elif abs(stones - args.size) > args.size // 100:
                raise SystemExit(f"{folder} holds {stones:,} stones, not --size {args.size:,}: use another folder")
            else:
                progress(f"reusing the catalogue kept in {folder} ({stones:,} listed stones)")
            progress(f"kept: run again with --keep {folder} (or --database '{database}' while it runs)")
            yield database
        finally:
            embedded.stop(folder)
        return
    progress("building into a throwaway database; --keep DIR keeps the catalogue for the next run")
    with throwaway_database() as database:
        build_catalogue(database, args.size)
        yield database


def settings_for_api(database: str, secrets_path: Path) -> Settings:
    """The API's settings on this database, its secrets in a local store at `secrets_path`."""
    return load_settings(database_url=database, secret_store="local", local_secrets_path=secrets_path)


def database_facts(database: str) -> dict[str, Any]:
    """What bounds the database's caching: its buffer size against the catalogue's size."""
    with psycopg.connect(database) as conn:
        (shared_buffers,) = one(conn.execute("SHOW shared_buffers").fetchone())
        table, indexes = one(
            conn.execute(
                "SELECT pg_size_pretty(pg_table_size('diamonds')), pg_size_pretty(pg_indexes_size('diamonds'))"
            ).fetchone()
        )
    pool = settings_for_api(database, Path("unused")).db_pool_max_size
    return {
        "stones": listed_stones(database),
        "shared_buffers": shared_buffers,
        "table": table,
        "indexes": indexes,
        "pool": pool,
    }
