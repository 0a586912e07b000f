"""What the API holds for its lifetime: settings, an async pool, the secret store and small caches."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from psycopg import AsyncConnection

from api.readiness import Readiness
from shared import telemetry
from shared.access import server_keys
from shared.access.server_keys import ServerKeys
from shared.config import Settings
from shared.db.connect import connection_arguments
from shared.db.pools import AsyncPool, pool_options
from shared.secrets import CachedSecretStore

log = logging.getLogger("caratflow.api")

K = TypeVar("K")
V = TypeVar("V")


class ByteBudgetCache(Generic[K]):
    """Least recently used byte strings, bounded by their total size rather than their number."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[K, bytes] = OrderedDict()

    def get(self, key: K) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return  # larger than the whole budget: caching it would evict everything for one answer
        old = self._entries.pop(key, None)
        self.size += len(value) - (len(old) if old is not None else 0)
        self._entries[key] = value
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)


class TtlCache(Generic[K, V]):
    """A bounded map whose entries expire; enough for per-process caches of small records."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (time.monotonic() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


async def _configure(conn: AsyncConnection) -> None:
    # The API writes nonces and rate budgets only. Not waiting for the WAL flush on those costs at
    # most the last few hundred milliseconds of them if PostgreSQL itself crashes.
    await conn.set_autocommit(True)
    await conn.execute("SET synchronous_commit = off")
    telemetry.trace_connection(conn)  # spans for its queries, only inside a recorded trace


@dataclass
class ApiState:
    settings: Settings
    database_url: str
    secrets: CachedSecretStore
    pool: AsyncPool | None = None
    draining: bool = False
    # The local host's durable client under `caratflow serve`; in Azure the binding (api/deps.py).
    durable: Any = None
    keys: TtlCache[str, Any] = field(init=False)
    counts: TtlCache[tuple[int, str], tuple[int, bool]] = field(init=False)
    estimates: TtlCache[tuple[int, str], int] = field(init=False)
    answers: ByteBudgetCache[tuple[int, str, int]] = field(init=False)
    readiness: Readiness = field(init=False)
    # Re-read a minute after use, so a rotation reaches every instance well within the overlap.
    _server_keys: TtlCache[str, ServerKeys] = field(default_factory=lambda: TtlCache(60, max_entries=1))
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.keys = TtlCache(self.settings.api_key_cache_seconds)
        # Keyed by dataset version: a count is reused only while the catalogue has not changed.
        self.counts = TtlCache(3600, max_entries=4096)
        self.estimates = TtlCache(3600, max_entries=4096)
        # Whole search answers, keyed by dataset version and query (api/routes/diamonds.py).
        self.answers = ByteBudgetCache(self.settings.api_answer_cache_mb * 1024 * 1024)
        self.readiness = Readiness(self.connection, self.secrets)

    async def _connection_arguments(self) -> dict[str, Any]:
        # Off the event loop: with DATABASE_AUTH=entra this may fetch a token over the network.
        return await asyncio.to_thread(connection_arguments(self.settings, "caratflow-api"))

    async def db(self) -> AsyncPool:
        """The pool, opened on first use (the Functions host gives no reliable start-up hook).

        Not waiting for its first connection here: with the database down, each request then waits
        DB_POOL_TIMEOUT_SECONDS for one and answers 503, and the pool connects once the database is back.
        """
        if self.pool is None:
            async with self._lock:
                if self.pool is None:
                    pool = AsyncPool(
                        self.database_url,
                        name="caratflow-api",
                        kwargs=self._connection_arguments,
                        configure=_configure,
                        open=False,
                        **pool_options(self.settings),
                    )
                    await pool.open()
                    self.pool = pool
        return self.pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection of the pool for the block; routes take `api.deps.Connection` instead."""
        pool = await self.db()
        async with pool.connection() as conn:
            yield conn

    async def server_keys(self, conn: AsyncConnection | None = None) -> ServerKeys:
        """The keys that sign and verify cursors and media links (shared/access/server_keys.py); read
        on `conn` when a handler holds one, so that it never waits for a second."""
        keys = self._server_keys.get("current")
        if keys is None:
            if conn is None:
                async with self.connection() as own:
                    keys = await server_keys.load_async(own)
            else:
                keys = await server_keys.load_async(conn)
            self._server_keys.put("current", keys)
        return keys

    async def close(self) -> None:
        self.draining = True
        if self.pool is not None:
            await self.pool.close()
