"""Benchmark of the search API: latency and throughput under 50 clients, the SQL floor, the plans.

    .venv/bin/python bench/bench_api.py [--size 1000000] [--keep DIR | --database URL] [--write]

On a catalogue built by the real main job (the feed emulator in its own process, a full sync of both
feeds, then VACUUM ANALYZE), this measures:
- the search mix: about ten searches a storefront sends, each request freshly signed, replayed by
  autocannon over 50 connections against `caratflow serve` as 1 process and as `--workers 2`:
  requests/s and p50/p95/p99 latency, overall and per search;
- revalidations: the same requests with `If-None-Match` on the current ETag, all answered 304;
- the SQL floor: the statements those searches run (built by shared/catalogue/search.py), through
  psycopg on one connection, sequentially, per statement p50/p95/p99;
- where the server's CPU goes (py-spy, when installed in the venv), and the CPU of each process;
- bench/explain.md: EXPLAIN (ANALYZE, BUFFERS) of every sort key in both directions under
  representative filters, and which index served each.
Every response is checked: a status other than the expected 200 or 304 is counted and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from bench_sync import full_sync, settings_for  # noqa: E402
from common import emulator_process, machine, throwaway_database, write_section  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from caratflow_client.signing import sign_request  # noqa: E402
from local_host.runtime import LocalRuntime  # noqa: E402
from shared.access.keys import create_key  # noqa: E402
from shared.catalogue import cursor as cursors  # noqa: E402
from shared.catalogue import search  # noqa: E402
from shared.catalogue.query import SORT_COLUMNS, DiamondSearch  # noqa: E402
from shared.db import embedded  # noqa: E402
from shared.db.connect import open_pool  # noqa: E402
from shared.db.migrate import migrate  # noqa: E402
from shared.secrets import open_secret_store  # noqa: E402

# autocannon lives in a prefix of its own: `npm install --prefix .tools <pkg>` rewrites .tools as a
# project holding only <pkg>, which would remove the Azurite that dev.py installs there.
AUTOCANNON = "autocannon@8.0.0"
AUTOCANNON_PREFIX = PROJECT / ".tools" / "autocannon"
REPLAY_JS = PROJECT / "bench" / "load" / "replay.js"
EXPLAIN_MD = PROJECT / "bench" / "explain.md"
PAGE = 50  # the API's default page size, which the mix uses
# Raised so that the bench client is never refused; every request still runs the full GCRA update.
RATE_PER_MINUTE = 6_000_000
BURST = 100_000
WARMUP_SECONDS = 5


# --- the catalogue ---------------------------------------------------------------------------------


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
        (count,) = conn.execute("SELECT count(*) FROM diamonds WHERE delisted_at IS NULL").fetchone()
    return count


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
            if listed_stones(database) == 0:
                build_catalogue(database, args.size)
            else:
                progress(f"reusing the catalogue kept in {folder} ({listed_stones(database):,} listed stones)")
            progress(f"kept: run again with --keep {folder} (or --database '{database}' while it runs)")
            yield database
        finally:
            embedded.stop(folder)
        return
    progress("building into a throwaway database; --keep DIR keeps the catalogue for the next run")
    with throwaway_database() as database:
        build_catalogue(database, args.size)
        yield database


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)
