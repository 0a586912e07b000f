"""Authentication, authorization and rate limits of every /api/v1 request (the callers of api/deps.py).

Order matters: the signature is checked in Python first (cached key record and secrets), then the
scope, then a single database round trip (`caratflow_api_gate`, shared/access/gate.py) rejects a
replayed nonce, spends the rate budget and returns the dataset version for the ETag. A failure
spends the failed-attempt budget of the caller's address instead; once that runs out, that
address's failing requests get 429 with the real wait. A correctly signed request is never refused
for failures: a key id travels in clear, so counting failures against it would hand anyone who saw
it a way to lock its owner out (docs/security.md).

The checks run on the request's one connection (`api.deps.Connection`), which is checked out only
once the whole request has arrived: a slow sender holds no connection.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from fastapi import Request
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.problems import Problem, unauthorized
from api.state import ApiState
from caratflow_client import signing
from shared import telemetry
from shared.access import gate
from shared.access.keys import KEY_RECORD_SQL, KeyRecord
from shared.access.verify import ActiveSecret, AuthFailure, check_signature, check_timestamp
from shared.notify.events import record_auth_blocked
from shared.secrets import SecretNotFound

log = logging.getLogger("caratflow.api.auth")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_SINGLE_HEADERS = ("authorization", "content-type")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of this request."""

    client_id: str
    key_id: str
    scopes: frozenset[str]
    dataset_version: int


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


async def _key_record(state: ApiState, conn: AsyncConnection, key_id: str) -> KeyRecord | None:
    cached = state.keys.get(key_id)
    if cached is not None:
        return cached or None
    async with conn.cursor(row_factory=dict_row) as cur:
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


async def _fail(
    request: Request, state: ApiState, conn: AsyncConnection, reason: str, known_key_id: str | None
) -> Problem:
    """Count a failed authentication against the caller's address, and against the key it named
    when that key exists. Only the address's budget ever refuses anything, and only that address's
    failing requests: a correct signature passes whatever others did (see `_authenticate`).

    An exhausted key budget is a signal (someone is failing with this key id, from anywhere): it is
    logged and notified, never enforced, since a key id travels in clear and enforcing it would let
    anyone lock its owner out. Unknown key ids get no budget, so random ones create no rows.
    """
    settings = state.settings
    ip = client_ip(request, state)
    subject = gate.address_subject(ip)
    per_minute, burst = settings.api_auth_failures_per_minute, settings.api_auth_failure_burst
    details = {"reason": reason, "key_id": known_key_id, "client_ip": ip}
    by_address = await gate.admit(conn, gate.Budget.per_minute(f"authfail:{subject}", per_minute, burst))
    if not by_address.admitted:
        # Operators hear of a refused address once per hour (shared/notify/events.py).
        await record_auth_blocked(conn, subject, {**details, "enforced": True})
    elif known_key_id is not None:
        # A refused address's failures count nowhere else: it cannot drive the key's signal.
        by_key = await gate.admit(conn, gate.Budget.per_minute(f"authfail:key:{known_key_id}", per_minute, burst))
        if not by_key.admitted:
            await record_auth_blocked(conn, f"key:{known_key_id}", {**details, "enforced": False})
    log.warning("authentication failed", extra={**details, "blocked": not by_address.admitted})
    if by_address.admitted:
        return unauthorized()
    telemetry.record_rate_limited(budget="auth", route=_route(request))
    return Problem(
        429,
        "too-many-failures",
        "Too many failed attempts",
        "Authentication failed too often from this address.",
        "Check the key and the signing code, then retry after the seconds in Retry-After.",
        headers=_limit_headers(burst, 0, by_address.reset_after_ms, by_address.retry_after_ms),
    )


def _refuse_repeated(request: Request) -> None:
    """One Authorization and one Content-Type: with two, the signature check and the app (or a proxy,
    or the Functions host, which may merge them) could each read a different one."""
    for name in _SINGLE_HEADERS:
        if len(request.headers.getlist(name)) > 1:
            raise Problem(
                400,
                "repeated-header",
                "Repeated header",
                f"The request carries more than one {name} header.",
                f"Send exactly one {name} header.",
            )


def signed_path(request: Request) -> bytes:
    """The path as the caller sent it, still percent-encoded: what the signature covers.

    uvicorn passes the raw target's path as `raw_path`; in Azure, api/functions.py puts the host's
    URL path there. `request.url.path` would not do: it is decoded, and URL parsing drops TAB, CR
    and LF, so `a%0Ab` would verify as `ab`.
    """
    raw = request.scope.get("raw_path")
    path: bytes = raw if raw else request.scope["path"].encode()
    return path


async def authenticate(request: Request, state: ApiState, conn: AsyncConnection, scope: str) -> Principal:
    """The caller of `request`: signed by an active key whose client holds `scope`, within its budget."""
    settings = state.settings
    now = datetime.now(UTC)
    _refuse_repeated(request)
    key_id: str | None = None
    record: KeyRecord | None = None
    try:
        signature = signing.parse_authorization(request.headers.get("authorization", ""))
        key_id = signature.key_id
        check_timestamp(signature.timestamp, now, settings.api_signature_tolerance_seconds)
        record = await _key_record(state, conn, key_id)
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
            path=signed_path(request),
            query=request.scope.get("query_string", b""),
            content_type=request.headers.get("content-type", ""),
            body=await request.body(),
        )
        check_signature(signature, message, await _secrets(state, record, now))
    except (signing.MalformedSignature, AuthFailure) as exc:
        raise await _fail(request, state, conn, str(exc), key_id if record is not None else None) from None

    # Scope before any budget: a key calling a route it may not use spends nothing and stores nothing.
    if scope not in record.scopes:
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"This key's client lacks the '{scope}' scope.",
            "Ask an operator for a key with that scope (`caratflow keys create --scope ...`).",
        )
    kind = "search" if request.method in _SAFE_METHODS else "mutation"
    per_minute, burst = (
        (settings.api_search_rate_per_minute, settings.api_search_burst)
        if kind == "search"
        else (settings.api_mutation_rate_per_minute, settings.api_mutation_burst)
    )
    expires_at = datetime.fromtimestamp(signature.timestamp + settings.api_signature_tolerance_seconds, UTC)
    outcome = await gate.gate(
        conn, key_id, signature.nonce, expires_at, gate.request_budget(kind, record.client_id, per_minute, burst)
    )
    if outcome.outcome == "replayed":
        raise await _fail(request, state, conn, "nonce replayed", key_id)
    # The gate counts the budget for every request it does not refuse as replayed.
    assert outcome.remaining is not None
    assert outcome.reset_after_ms is not None
    if outcome.outcome == "limited":
        telemetry.record_rate_limited(budget=kind, route=_route(request))
        headers = _limit_headers(per_minute, outcome.remaining, outcome.reset_after_ms, outcome.retry_after_ms)
        raise _too_many(headers, kind)
    request.state.rate_limit_headers = _limit_headers(per_minute, outcome.remaining, outcome.reset_after_ms)
    return Principal(record.client_id, key_id, record.scopes, outcome.dataset_version)
