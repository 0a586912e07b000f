"""Sending due deliveries: fan new events out, then claim, POST and record one delivery at a time.

A 2xx is delivered. 429, 408, 5xx, timeouts and connection errors are retried with exponential
backoff and jitter (a 429's Retry-After is waited at least), until NOTIFY_MAX_ATTEMPTS. Any other
answer gives up at once: a 4xx will not change by asking again, and a 3xx is not followed (a webhook
that redirects is misconfigured, and following it would send the payload somewhere else). Giving up
is logged at ERROR and stays listed (`caratflow notify list --status given_up`) until re-queued.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from psycopg_pool import ConnectionPool

from shared.notify import store
from shared.notify.formats import payload
from shared.notify.messages import message_for
from shared.notify.targets import WebhookTarget

log = logging.getLogger(__name__)

RETRY_AFTER_CAP = timedelta(hours=1)  # a Retry-After is honoured up to this; beyond it the answer is suspect
LEASE_MARGIN = timedelta(seconds=30)  # beyond the HTTP timeout: the time to record the outcome
RETRYABLE = frozenset({408, 429}) | frozenset(range(500, 600))


class DeliverySettings(Protocol):
    """What delivery reads of the settings; shared/config.py's Settings has it all. A protocol rather
    than an import of Settings, because the settings module imports this package (WebhookTarget)."""

    @property
    def notify_webhooks(self) -> tuple[WebhookTarget, ...]: ...

    @property
    def notify_max_attempts(self) -> int: ...

    @property
    def notify_backoff_base_seconds(self) -> float: ...

    @property
    def notify_backoff_max_seconds(self) -> float: ...

    @property
    def notify_timeout_seconds(self) -> float: ...


@dataclass
class DeliveryReport:
    events: int = 0
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0


class WebhookSender:
    """POSTs JSON through an httpx transport. Not httpx.Client: that logs every request's full URL at
    INFO, and a webhook URL is a credential."""

    def __init__(self, timeout_seconds: float) -> None:
        self._transport = httpx.HTTPTransport(retries=0)  # retries are ours, recorded one by one
        self._timeout = httpx.Timeout(timeout_seconds).as_dict()

    def post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        request = httpx.Request(
            "POST", url, json=body, headers={"User-Agent": "caratflow"}, extensions={"timeout": self._timeout}
        )
        response = self._transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    def close(self) -> None:
        self._transport.close()


def deliver_due(
    pool: ConnectionPool,
    settings: DeliverySettings,
    *,
    max_seconds: float = 50,
    sender: WebhookSender | None = None,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Fan out new events, then send due deliveries until none is due or `max_seconds` are spent."""
    targets = {target.name: target for target in settings.notify_webhooks}
    own_sender = sender is None
    sender = sender or WebhookSender(settings.notify_timeout_seconds)
    rng = rng or random.Random()
    lease = timedelta(seconds=settings.notify_timeout_seconds) + LEASE_MARGIN
    report = DeliveryReport()
    deadline = time.monotonic() + max_seconds
    try:
        with pool.connection() as conn:
            while fanned := store.fan_out(conn, targets.values()):
                report.events += len(fanned)
                for event_id, event_kind, names in fanned:
                    log.info(
                        "notification event fanned out",
                        extra={"event_id": event_id, "event_kind": event_kind, "targets": names},
                    )
            while time.monotonic() < deadline and (claimed := store.claim_next(conn, lease)) is not None:
                outcome = _attempt(sender, targets.get(claimed.target), claimed, settings, rng)
                if store.finish(conn, claimed, outcome):
                    _log_outcome(claimed, targets.get(claimed.target), outcome, report)
                else:
                    log.warning(
                        "notification outcome not recorded: a later attempt holds the delivery",
                        extra={"delivery_id": claimed.delivery_id, "attempt": claimed.attempt},
                    )
    finally:
        if own_sender:
            sender.close()
    return report


def _attempt(
    sender: WebhookSender,
    target: WebhookTarget | None,
    claimed: store.Claimed,
    settings: DeliverySettings,
    rng: random.Random,
) -> store.Outcome:
    if target is None:
        error = f"target {claimed.target!r} is no longer in NOTIFY_WEBHOOKS"
        return store.Outcome("given_up", None, error, 0)
    message = message_for(claimed.event_id, claimed.event_kind, claimed.subject, claimed.details, claimed.occurred_at)
    url = target.url.get_secret_value()
    started = time.monotonic()
    try:
        response = sender.post(url, payload(target.format, message))
    except httpx.TransportError as exc:  # timeouts, refused and reset connections, TLS failures
        failed = store.Outcome("failed", None, _scrub(f"{type(exc).__name__}: {exc}", url), _ms(started))
        return _retry_or_give_up(failed, None, claimed, settings, rng)
    elapsed = _ms(started)
    code = response.status_code
    if 200 <= code < 300:
        return store.Outcome("delivered", code, None, elapsed)
    error = _scrub(f"HTTP {code}: {response.text[:200]}", url)
    if code in RETRYABLE:
        retry_after = _retry_after(response.headers.get("Retry-After"))
        return _retry_or_give_up(store.Outcome("failed", code, error, elapsed), retry_after, claimed, settings, rng)
    return store.Outcome("given_up", code, error, elapsed)


def _retry_or_give_up(
    failed: store.Outcome,
    retry_after: timedelta | None,
    claimed: store.Claimed,
    settings: DeliverySettings,
    rng: random.Random,
) -> store.Outcome:
    if claimed.round_attempts >= settings.notify_max_attempts:
        return replace(failed, status="given_up", error=f"{failed.error} (after {claimed.round_attempts} attempts)")
    delay = backoff(claimed.round_attempts, settings, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return replace(failed, retry_in=delay)


def backoff(attempt: int, settings: DeliverySettings, rng: random.Random) -> timedelta:
    """Exponential, capped, with jitter over its upper half so failing deliveries do not return in step."""
    ceiling = min(settings.notify_backoff_max_seconds, settings.notify_backoff_base_seconds * 2 ** (attempt - 1))
    return timedelta(seconds=ceiling / 2 + rng.uniform(0, ceiling / 2))


def _retry_after(value: str | None) -> timedelta | None:
    """Retry-After as a delay: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        return max(parsedate_to_datetime(value) - datetime.now(UTC), timedelta(0))
    except (TypeError, ValueError):
        log.warning("unreadable Retry-After header; backoff alone applies", extra={"retry_after_header": value[:100]})
        return None


def _scrub(text: str, url: str) -> str:
    """Error text with the URL, its path and its query replaced: exceptions and echoing servers may quote them."""
    parts = urlsplit(url)
    for secret in (url, parts.path if len(parts.path) > 1 else "", parts.query):
        if secret:
            text = text.replace(secret, "…")
    return text


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _log_outcome(
    claimed: store.Claimed, target: WebhookTarget | None, outcome: store.Outcome, report: DeliveryReport
) -> None:
    fields = {
        "delivery_id": claimed.delivery_id,
        "event_id": claimed.event_id,
        "event_kind": claimed.event_kind,
        "target": claimed.target,
        "webhook": target.redacted if target else None,
        "attempt": claimed.attempt,
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
    }
    if outcome.status == "delivered":
        report.delivered += 1
        log.info("notification delivered", extra=fields)
    elif outcome.status == "failed":
        report.retrying += 1
        retry_in = round(outcome.retry_in.total_seconds(), 3) if outcome.retry_in else 0
        log.warning("notification attempt failed; will retry", extra={**fields, "error": outcome.error,
                                                                       "retry_in_seconds": retry_in})  # fmt: skip
    else:
        report.given_up += 1
        log.error(
            "notification given up; `caratflow notify retry` re-queues it", extra={**fields, "error": outcome.error}
        )
