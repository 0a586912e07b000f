"""One outbound request budget shared by every fetcher in every process, kept in PostgreSQL.

Each request reserves the next free send slot with a single atomic UPDATE: the slot is the later of
the budget's `next_slot_at` and the database clock, and `next_slot_at` moves one interval past it.
The caller then sleeps until its slot. Slots are at least 1/rate apart, so no window of any length
sees more than rate x window + 1 requests, however many threads and processes share the budget.
The database clock is the only clock involved, so hosts with skewed clocks still agree.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Protocol

from psycopg_pool import ConnectionPool

from shared.db.rows import one

_RESERVE = """
INSERT INTO rate_budgets AS b (budget, next_slot_at) VALUES (%(budget)s, clock_timestamp() + %(interval)s)
ON CONFLICT (budget) DO UPDATE SET next_slot_at = greatest(b.next_slot_at, clock_timestamp()) + %(interval)s
RETURNING extract(epoch FROM b.next_slot_at - %(interval)s - clock_timestamp())::float8
"""


class RequestBudget(Protocol):
    def acquire(self) -> float:
        """Block until one request may be sent; return the seconds waited."""
        ...


class PostgresRequestBudget:
    """A named budget of `rate` requests per second in the `rate_budgets` table."""

    def __init__(self, pool: ConnectionPool, name: str, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.pool = pool
        self.name = name
        self.interval = timedelta(seconds=1.0 / rate)

    def acquire(self) -> float:
        with self.pool.connection() as conn:
            (wait,) = one(conn.execute(_RESERVE, {"budget": self.name, "interval": self.interval}).fetchone())
        # The connection goes back to the pool before we sleep: waiting holds no database resources.
        if wait > 0:
            time.sleep(wait)
            return float(wait)
        return 0.0
