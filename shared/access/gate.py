"""The database side of admitting a signed request: nonces, rate budgets and failed-attempt budgets.

The SQL functions are in migrations 0006 (`caratflow_admit`, a GCRA over `rate_budgets`) and 0009
(`caratflow_api_gate`). Budget names say whose budget it is: `api:search:<client>`,
`api:mutation:<client>`, `authfail:ip:<address or /64>`, `authfail:key:<key id>`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from shared.db.rows import one

GATE_SQL = """SELECT outcome, remaining, retry_after_ms, reset_after_ms, dataset_version
              FROM caratflow_api_gate(%s, %s, %s, %s, %s, %s)"""
ADMIT_SQL = "SELECT admitted, remaining, retry_after_ms, reset_after_ms FROM caratflow_admit(%s, %s, %s)"


@dataclass(frozen=True)
class Budget:
    name: str
    interval: timedelta
    burst: int

    @classmethod
    def per_minute(cls, name: str, per_minute: int, burst: int) -> Budget:
        return cls(name, timedelta(seconds=60 / per_minute), burst)


@dataclass(frozen=True)
class Admission:
    admitted: bool
    remaining: int
    retry_after_ms: int
    reset_after_ms: int


@dataclass(frozen=True)
class GateOutcome:
    outcome: str  # admitted | limited | replayed
    remaining: int | None
    retry_after_ms: int | None
    reset_after_ms: int | None
    dataset_version: int


def request_budget(kind: str, client_id: str, per_minute: int, burst: int) -> Budget:
    """A client's budget of `kind` (search or mutation) requests, shared by every instance."""
    return Budget.per_minute(f"api:{kind}:{client_id}", per_minute, burst)


def address_subject(address: str) -> str:
    """Whose failures an address spends: the address itself, or its /64 for IPv6, since one host
    commonly holds a whole /64 and could otherwise make a fresh budget (a fresh row) per request."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "ip:unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return f"ip:{parsed.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{parsed}/64', strict=False)}"
    return f"ip:{parsed}"


async def gate(
    conn: psycopg.AsyncConnection, key_id: str, nonce: str, nonce_expires_at: datetime, budget: Budget
) -> GateOutcome:
    """One round trip for a request whose signature checked out: replayed nonce, rate budget, ETag version."""
    row = await (
        await conn.execute(GATE_SQL, (key_id, nonce, nonce_expires_at, budget.name, budget.interval, budget.burst))
    ).fetchone()
    return GateOutcome(*one(row))


async def admit(conn: psycopg.AsyncConnection, budget: Budget) -> Admission:
    """Spend one slot of `budget`, if it has one (a refusal leaves the budget as it was)."""
    row = await (await conn.execute(ADMIT_SQL, (budget.name, budget.interval, budget.burst))).fetchone()
    return Admission(*one(row))
