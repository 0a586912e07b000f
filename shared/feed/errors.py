"""Typed feed errors: what the client retries, and what it gives up on."""

from __future__ import annotations


class FeedError(Exception):
    """Anything that went wrong talking to a supplier feed."""


class TransientFeedError(FeedError):
    """Worth retrying: network trouble, timeouts, 429, 5xx, a garbled or failed answer."""


class FeedTimeout(TransientFeedError):
    """No answer within the timeout."""


class FeedNetworkError(TransientFeedError):
    """The connection failed or broke."""


class FeedRateLimited(TransientFeedError):
    """HTTP 429; `retry_after_seconds` is the server's Retry-After as a delay, when it gave one."""

    def __init__(self, message: str, retry_after_seconds: float | None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class FeedServerError(TransientFeedError):
    """HTTP 5xx, or a GraphQL error that is not the caller's fault."""


class FeedMalformedResponse(TransientFeedError):
    """The body was not the JSON document a GraphQL server sends."""


class PermanentFeedError(FeedError):
    """Retrying cannot help: fix the request, the credentials or the configuration."""


class FeedAuthError(PermanentFeedError):
    """Credentials rejected, or the feed still refused us after one fresh login."""


class FeedQueryError(PermanentFeedError):
    """The feed rejected the query itself (GraphQL syntax/validation, bad arguments, other 4xx)."""


class FeedRetriesExhausted(FeedError):
    """Transient failures outlasted the retry budget; `__cause__` is the last one."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts
