"""The connection pools, and what they do when the database goes away and comes back.

psycopg_pool's own knobs bound the waits: `timeout` (DB_POOL_TIMEOUT_SECONDS) for a connection,
`connect_timeout` (DB_CONNECT_TIMEOUT_SECONDS, in shared/db/connect.py) for opening one, and a short
`reconnect_timeout`, so a failed reconnection is given up within seconds and the next caller starts a
fresh one at once instead of waiting out the library's doubling delays (1, 2, 4, 8 s... for 5 minutes:
the up-to-14 s recovery the attack measured).

The pools are subclassed for two things the library has no hook for:
- a connection that comes back broken drains the idle ones, which died with it: otherwise each of them
  fails one more request (or activity attempt) before the pool notices. `check=` would test every
  connection at every checkout, a round trip each, and its back-off between two checks uses up a wait
  of about a second after the first stale connection;
- giving up names the database: PoolTimeout says only how long it waited, and its text is what an
  activity's failure, its retries and a dead letter record.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout, TooManyRequests

from shared.config import Settings

# Long enough for two or three attempts, short enough that the pool is never more than about a
# second from trying again while callers are waiting.
RECONNECT_TIMEOUT_SECONDS = 2.0
# SQLSTATEs of a server that is going away or not accepting connections. Class 08 (connection exception)
# is added by prefix; errors without a SQLSTATE are the client's own (connection refused, or lost).
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "57P05", "53300"})


class DatabaseUnavailable(PoolTimeout):
    """No connection to the database within the wait; the message names the database."""


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached now (retry later), rather than a bug of ours."""
    if isinstance(exc, PoolTimeout | PoolClosed | TooManyRequests):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False  # SyntaxError, DataError, IntegrityError...: retrying the same request cannot help
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES


def describe(conninfo: str) -> str:
    """The database as an operator names it, without credentials: `PostgreSQL database x at host:port`."""
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"
    return f"PostgreSQL database {params.get('dbname') or '?'} at {where}"


def pool_options(settings: Settings) -> dict[str, Any]:
    """The sizes and waits both pools share."""
    return {
        "min_size": settings.db_pool_min_size,
        "max_size": settings.db_pool_max_size,
        "timeout": settings.db_pool_timeout_seconds,
        "reconnect_timeout": RECONNECT_TIMEOUT_SECONDS,
    }


def _gave_up(pool: ConnectionPool | AsyncConnectionPool, exc: PoolTimeout) -> DatabaseUnavailable:
    return DatabaseUnavailable(f"{describe(str(pool.conninfo))} unavailable (pool {pool.name}): {exc}")


class Pool(ConnectionPool):
    """The threads' pool (activities, the local host, the CLI)."""

    def getconn(self, timeout: float | None = None) -> Connection:
        try:
            return super().getconn(timeout)
        except PoolTimeout as exc:
            raise _gave_up(self, exc) from exc

    def wait(self, timeout: float = 30.0) -> None:
        try:
            super().wait(timeout)
        except PoolTimeout as exc:
            raise _gave_up(self, exc) from exc

    def putconn(self, conn: Connection) -> None:
        lost = conn.broken
        super().putconn(conn)
        if lost and not self.closed:
            self.drain()


class AsyncPool(AsyncConnectionPool):
    """The API's pool."""

    async def getconn(self, timeout: float | None = None) -> AsyncConnection:
        try:
            return await super().getconn(timeout)
        except PoolTimeout as exc:
            raise _gave_up(self, exc) from exc

    async def putconn(self, conn: AsyncConnection) -> None:
        lost = conn.broken
        await super().putconn(conn)
        if lost and not self.closed:
            await self.drain()
