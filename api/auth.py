"""Authentication, authorization and rate limits of every /api/v1 request, as one dependency.

Order matters: the signature is checked in Python first (cached key record and secrets), then a
single database round trip (`caratflow_api_gate`, migration 0006) rejects blocked callers and
replayed nonces, spends the rate budget and returns the dataset version for the ETag. A failure
spends the failed-attempt budgets of the caller's IP and claimed key instead; once those run out the
answer is 429, whether or not the next signature would be right.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import anyio
from fastapi import Depends, Request
from psycopg.rows import dict_row

from api.problems import Problem, unauthorized
from api.state import ApiState
from caratflow_client import signing
from shared import telemetry
from shared.access.keys import KEY_RECORD_SQL, KeyRecord
from shared.access.verify import ActiveSecret, AuthFailure, check_signature, check_timestamp
from shared.notify.events import record_auth_blocked
from shared.secrets import SecretNotFound

log = logging.getLogger("caratflow.api.auth")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of this request."""

    client_id: str
    key_id: str
    scopes: frozenset[str]
    dataset_version: int


def state_of(request: Request) -> ApiState:
    return request.app.state.api


def client_ip(request: Request, state: ApiState) -> str:
    peer = request.client.host if request.client else "unknown"
    if state.settings.api_trust_forwarded_for:
        return forwarded_ip(request.headers.get("x-forwarded-for", "")) or peer
    return peer


def _route(request: Request) -> str:
    """The matched route's template (never the raw path: ids would make every path its own series)."""
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


def forwarded_ip(header: str) -> str | None:
    """The address the nearest proxy saw: the LAST X-Forwarded-For entry (earlier ones are whatever the
    caller sent, so a caller could pick its own failure budget), without the port Azure's front end
    appends ("203.0.113.7:52311", "[2001:db8::1]:443"). None when absent or not an address."""
    entry = header.rsplit(",", 1)[-1].strip()
    if entry.startswith("["):
        entry = entry[1:].split("]", 1)[0]
    elif entry.count(":") == 1:
        entry = entry.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


def _interval(per_minute: int) -> timedelta:
    return timedelta(seconds=60 / per_minute)


def _limit_headers(limit: int, remaining: int, reset_ms: int, retry_ms: int | None = None) -> dict[str, str]:
    headers = {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(remaining, 0)),
        "RateLimit-Reset": str(-(-reset_ms // 1000)),
    }
    if retry_ms is not None:
        headers["Retry-After"] = str(max(1, -(-retry_ms // 1000)))
    return headers


def _too_many(headers: dict[str, str], what: str) -> Problem:
    return Problem(
        429,
        "rate-limited",
        "Too many requests",
        f"The {what} budget of this client is spent for now.",
        "Wait for the seconds in Retry-After, then retry; the RateLimit-* headers show the budget.",
        headers=headers,
    )


async def _key_record(state: ApiState, key_id: str) -> KeyRecord | None:
    cached = state.keys.get(key_id)
    if cached is not None:
        return cached or None
    pool = await state.db()
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        row = await (await cur.execute(KEY_RECORD_SQL, {"key_id": key_id})).fetchone()
    record = KeyRecord.from_row(row) if row else None
    state.keys.put(key_id, record or False)
    return record


async def _secrets(state: ApiState, record: KeyRecord, now: datetime) -> list[ActiveSecret]:
    active = []
    for ref in record.active_secrets(now):
        try:
            # A cache hit answers on the event loop; only a miss pays for the thread hop.
            value = state.secrets.peek(record.secret_name, ref.version)
            if value is None:
                value = await anyio.to_thread.run_sync(state.secrets.get, record.secret_name, ref.version)
        except SecretNotFound:
            # Disabled or deleted in the store: that version can no longer sign. Other errors
            # (the store unreachable) surface as a 500 with the cause logged, not as a 401.
            log.warning(
                "secret version missing from the store", extra={"key_id": record.key_id, "secret_version": ref.version}
            )
            continue
        active.append(ActiveSecret(ref.version, value, ref.sha256))
    return active


async def _fail(request: Request, state: ApiState, reason: str, key_id: str | None) -> Problem:
    settings = state.settings
    budgets = [f"authfail:ip:{client_ip(request, state)}"] + ([f"authfail:key:{key_id}"] if key_id else [])
    blocked = []
    pool = await state.db()
    async with pool.connection() as conn:
        for budget in budgets:
            row = await (
                await conn.execute(
                    "SELECT admitted, retry_after_ms FROM caratflow_admit(%s, %s, %s)",
                    (budget, _interval(settings.api_auth_failures_per_minute), settings.api_auth_failure_burst),
                )
            ).fetchone()
            if not row[0]:
                blocked.append(budget.removeprefix("authfail:"))
        details = {"reason": reason, "key_id": key_id, "client_ip": client_ip(request, state)}
        for subject in blocked:
            # Operators hear of a blocked caller once per hour per caller (shared/notify/events.py).
            await record_auth_blocked(conn, subject, details)
    refused = bool(blocked)
    if refused:
        telemetry.record_rate_limited(budget="auth", route=_route(request))
    log.warning("authentication failed", extra={**details, "blocked": refused})
    if refused:
        return Problem(
            429,
            "too-many-failures",
            "Too many failed attempts",
            "Authentication failed too often from this client or address.",
            "Check the key and the signing code, wait a minute, then retry.",
            headers={"Retry-After": "60"},
        )
    return unauthorized()


async def _authenticate(request: Request, scope: str) -> Principal:
    state = state_of(request)
    settings = state.settings
    now = datetime.now(UTC)
    key_id: str | None = None
    try:
        signature = signing.parse_authorization(request.headers.get("authorization", ""))
        key_id = signature.key_id
        check_timestamp(signature.timestamp, now, settings.api_signature_tolerance_seconds)
        record = await _key_record(state, key_id)
        if record is None:
            raise AuthFailure("unknown key")
        reason = record.unusable_reason(now)
        if reason:
            raise AuthFailure(reason)
        message = signing.string_to_sign(
            key_id=key_id,
            timestamp=signature.timestamp,
            nonce=signature.nonce,
            method=request.method,
            path=request.url.path,
            query=request.scope.get("query_string", b""),
            content_type=request.headers.get("content-type", ""),
            body=await request.body(),
        )
        check_signature(signature, message, await _secrets(state, record, now))
    except (signing.MalformedSignature, AuthFailure) as exc:
        raise await _fail(request, state, str(exc), key_id) from None

    mutation = request.method not in _SAFE_METHODS
    per_minute = settings.api_mutation_rate_per_minute if mutation else settings.api_search_rate_per_minute
    burst = settings.api_mutation_burst if mutation else settings.api_search_burst
    pool = await state.db()
    async with pool.connection() as conn:
        gate = await (
            await conn.execute(
                """SELECT outcome, remaining, retry_after_ms, reset_after_ms, dataset_version
               FROM caratflow_api_gate(%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    key_id,
                    signature.nonce,
                    datetime.fromtimestamp(signature.timestamp + settings.api_signature_tolerance_seconds, UTC),
                    f"api:{'mutation' if mutation else 'search'}:{record.client_id}",
                    _interval(per_minute),
                    burst,
                    [f"authfail:ip:{client_ip(request, state)}", f"authfail:key:{key_id}"],
                    _interval(settings.api_auth_failures_per_minute),
                    settings.api_auth_failure_burst,
                ),
            )
        ).fetchone()
    outcome, remaining, retry_ms, reset_ms, dataset_version = gate
    if outcome == "blocked":
        raise await _fail(request, state, "caller blocked after failed attempts", key_id)
    if outcome == "replayed":
        raise await _fail(request, state, "nonce replayed", key_id)
    limit = per_minute
    if outcome == "limited":
        telemetry.record_rate_limited(budget="mutation" if mutation else "search", route=_route(request))
        raise _too_many(_limit_headers(limit, remaining, reset_ms, retry_ms), "mutation" if mutation else "search")
    request.state.rate_limit_headers = _limit_headers(limit, remaining, reset_ms)
    if scope not in record.scopes:
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"This key's client lacks the '{scope}' scope.",
            "Ask an operator for a key with that scope (`caratflow keys create --scope ...`).",
        )
    return Principal(record.client_id, key_id, record.scopes, dataset_version)


def require(scope: str):
    """A dependency: the request is signed by an active key whose client holds `scope`."""

    async def dependency(request: Request) -> Principal:
        return await _authenticate(request, scope)

    return Depends(dependency)


SearchCaller = Annotated[Principal, require("search")]
AdminCaller = Annotated[Principal, require("admin")]
