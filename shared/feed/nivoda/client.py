"""The Nivoda GraphQL client: login and token reuse, the shared request budget, retries.

Retried with exponential backoff and jitter: timeouts, network errors, 429 (at least Retry-After),
5xx, garbled bodies and GraphQL errors that are the server's fault. Never retried: 4xx, GraphQL
syntax/validation/argument errors, rejected credentials. An auth error on a data query gets one
fresh login; a second one is final. Every attempt, retries and logins included, spends one slot of
the request budget.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from shared.config import Settings
from shared.feed import errors
from shared.feed.budget import RequestBudget
from shared.feed.nivoda import queries
from shared.feed.nivoda.items import validate_items
from shared.feed.nivoda.tokens import PROCESS_TOKENS, TokenCache
from shared.feed.page import FeedPage

log = logging.getLogger(__name__)

STABLE_ORDER = {"type": "createdAt", "direction": "ASC"}
MAX_PAGE_SIZE = 50
MAX_RETRY_AFTER_SECONDS = 300.0
_QUERY_ERROR_CODES = {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}
_QUERY_ERROR_PREFIXES = ("syntax error", "cannot query field", "unknown argument", "variable ", "expected type")
_AUTH_WORDS = ("unauthori", "unauthenticated", "not authenticated", "token expired", "invalid token")


class _AuthRejected(Exception):
    """The feed refused the token on a data query (internal: triggers one re-login)."""


class NivodaClient:
    """Counts and pages of Nivoda's `diamonds_by_query`. Thread-safe; share one per process."""

    def __init__(
        self,
        *,
        endpoint: str,
        username: str,
        password: str,
        budget: RequestBudget,
        token_mode: queries.TokenMode = "header",  # noqa: S107 - a mode, not a password
        timeout: float = 45.0,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 20.0,
        token_ttl: float = 6 * 3600,
        token_refresh_margin: float = 300,
        tokens: TokenCache = PROCESS_TOKENS,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._username = username
        self._password = password
        self._budget = budget
        self._mode = token_mode
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._token_ttl = token_ttl
        self._token_margin = token_refresh_margin
        self._tokens = tokens
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), headers={"Content-Type": "application/json"})
        self._page_query = queries.page_query(token_mode)
        self._count_query = queries.count_query(token_mode)

    @classmethod
    def from_settings(cls, settings: Settings, budget: RequestBudget) -> NivodaClient:
        return cls(
            endpoint=settings.nivoda_endpoint,
            username=settings.nivoda_username,
            password=settings.nivoda_password.get_secret_value(),
            budget=budget,
            token_mode=settings.nivoda_token_mode,
            timeout=settings.feed_timeout_seconds,
            max_attempts=settings.feed_max_attempts,
            backoff_base=settings.feed_backoff_base_seconds,
            backoff_max=settings.feed_backoff_max_seconds,
            token_ttl=settings.feed_token_ttl_seconds,
            token_refresh_margin=settings.feed_token_refresh_margin_seconds,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NivodaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- operations

    def count(self, query: dict[str, Any]) -> int:
        """`diamonds_by_query_count` for a DiamondQuery (a hint: paging may return more or fewer)."""
        value = self._call(self._count_query, {"query": query}, "diamonds_by_query_count")
        if not isinstance(value, int) or value < 0:
            raise errors.FeedMalformedResponse(f"count is not a non-negative integer: {value!r}")
        return value

    def page(
        self, query: dict[str, Any], offset: int, limit: int = MAX_PAGE_SIZE, order: dict[str, str] = STABLE_ORDER
    ) -> FeedPage:
        """One page at `offset`, its items validated; malformed items come back as rejects."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        variables = {"query": query, "offset": offset, "limit": limit, "order": order}
        result = self._call(self._page_query, variables, "diamonds_by_query")
        if not isinstance(result, dict) or not isinstance(result.get("items"), list):
            raise errors.FeedMalformedResponse("diamonds_by_query has no items list")
        items, rejects = validate_items(result["items"])
        total = result.get("total_count")
        return FeedPage(offset, items, rejects, total if isinstance(total, int) else None)

    # --- plumbing

    def _call(self, document: str, variables: dict[str, Any], field: str) -> Any:
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            token = None
            try:
                token = self._token()
                return self._data_query(document, variables, token, field)
            except _AuthRejected:
                if relogged:
                    raise errors.FeedAuthError("the feed refused a freshly issued token") from None
                relogged = True
                attempt -= 1  # a refresh is not a failure of the request itself
                if token is not None:
                    self._tokens.invalidate(self._token_key, token)
                log.info("feed token refused; logging in again", extra={"feed_endpoint": self.endpoint})
            except errors.TransientFeedError as exc:
                if attempt >= self._max_attempts:
                    raise errors.FeedRetriesExhausted(
                        f"{field}: gave up after {attempt} attempts: {exc}", attempt
                    ) from exc
                delay = self._delay(attempt, exc)
                log.warning(
                    "feed request failed; retrying",
                    extra={
                        "feed_field": field,
                        "attempt": attempt,
                        "retry_in_seconds": round(delay, 3),
                        "error": repr(exc),
                    },
                )
                self._sleep(delay)

    @property
    def _token_key(self) -> tuple[str, str]:
        return (self.endpoint, self._username)

    def _token(self) -> str:
        return self._tokens.get(self._token_key, self._login, ttl=self._token_ttl, margin=self._token_margin)

    def _login(self) -> str:
        body = {"query": queries.LOGIN, "variables": {"username": self._username, "password": self._password}}
        try:
            data = self._post(body, headers={})
        except _AuthRejected:
            raise errors.FeedAuthError("the feed rejected our credentials") from None
        token = _dig(data, ("authenticate", "username_and_password", "token"))
        if not isinstance(token, str) or not token:
            raise errors.FeedMalformedResponse("login answer carries no token")
        log.info("logged in to the feed", extra={"feed_endpoint": self.endpoint})
        return token

    def _data_query(self, document: str, variables: dict[str, Any], token: str, field: str) -> Any:
        if self._mode == "header":
            data = self._post({"query": document, "variables": variables}, {"Authorization": f"Bearer {token}"})
            return _dig(data, (field,))
        data = self._post({"query": document, "variables": {**variables, "token": token}}, {})
        return _dig(data, ("as", field))

    def _post(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """One HTTP exchange, its outcome turned into data or a typed error."""
        self._budget.acquire()
        try:
            response = self._http.post(self.endpoint, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise errors.FeedTimeout(f"no answer in time: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise errors.FeedNetworkError(f"connection failed: {exc!r}") from exc
        _raise_for_status(response)
        try:
            document = response.json()
        except ValueError as exc:
            raise errors.FeedMalformedResponse(f"body is not JSON ({len(response.content)} bytes)") from exc
        if not isinstance(document, dict):
            raise errors.FeedMalformedResponse("body is not a JSON object")
        if document.get("errors"):
            _raise_graphql_errors(document["errors"])
        data = document.get("data")
        if not isinstance(data, dict):
            raise errors.FeedMalformedResponse("answer has neither data nor errors")
        return data

    def _delay(self, attempt: int, exc: errors.TransientFeedError) -> float:
        if isinstance(exc, errors.FeedRateLimited) and exc.retry_after_seconds is not None:
            # Honour the server's wait; a little jitter keeps concurrent fetchers from returning in step.
            return min(exc.retry_after_seconds, MAX_RETRY_AFTER_SECONDS) * (1 + 0.1 * self._rng.random())
        ceiling: float = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = f"HTTP {status}: {response.text[:200]!r}"
    if status == 429:
        raise errors.FeedRateLimited(detail, _retry_after(response.headers.get("Retry-After")))
    if status in (401, 403):
        raise _AuthRejected(detail)
    if status == 408 or status >= 500:
        raise errors.FeedServerError(detail)
    raise errors.FeedQueryError(detail)


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        log.warning("unreadable Retry-After header", extra={"retry_after_header": value})
        return None


def _raise_graphql_errors(graphql_errors: Any) -> None:
    if not isinstance(graphql_errors, list):
        raise errors.FeedMalformedResponse("errors is not a list")
    messages = []
    kinds = set()
    for error in graphql_errors:
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = str(extensions.get("code", "")) if isinstance(extensions, dict) else ""
        messages.append(f"{code}: {message}" if code else message)
        lowered = message.lower()
        if code == "UNAUTHENTICATED" or any(word in lowered for word in _AUTH_WORDS):
            kinds.add("auth")
        elif code in _QUERY_ERROR_CODES or lowered.startswith(_QUERY_ERROR_PREFIXES):
            kinds.add("query")
        else:
            kinds.add("server")
    summary = "; ".join(messages)[:500]
    if "query" in kinds:
        raise errors.FeedQueryError(f"the feed rejected the query: {summary}")
    if "auth" in kinds:
        raise _AuthRejected(summary)
    raise errors.FeedServerError(f"the feed reported an error: {summary}")


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise errors.FeedMalformedResponse(f"answer lacks {'.'.join(path)}")
        node = node[key]
    return node
