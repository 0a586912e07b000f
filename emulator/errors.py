"""Error shapes the emulator answers with, and the exceptions that carry them to the HTTP layer."""

from __future__ import annotations

from typing import Any

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
UNAUTHENTICATED = "UNAUTHENTICATED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
BAD_REQUEST = "BAD_REQUEST"
RATE_LIMITED = "RATE_LIMITED"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"

UNAUTHORIZED_MESSAGE = "Unauthorized: token expired or invalid"


def error_entry(
    message: str,
    code: str,
    *,
    path: list[str | int] | None = None,
    locations: list[dict[str, int]] | None = None,
) -> dict[str, Any]:
    """One member of a GraphQL `errors[]` array."""
    entry: dict[str, Any] = {"message": message}
    if locations:
        entry["locations"] = locations
    if path is not None:
        entry["path"] = path
    entry["extensions"] = {"code": code}
    return entry


class QueryInputError(ValueError):
    """A well-formed query asked for something the feed refuses (limit > 50, unknown grade...)."""


class FieldError(Exception):
    """A top-level field failed; it resolves to null and an error with its path is reported."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class RequestError(Exception):
    """The whole request failed before execution (syntax, validation, variables): no `data`."""

    def __init__(self, errors: list[dict[str, Any]], status: int = 200) -> None:
        super().__init__(errors[0]["message"] if errors else "request failed")
        self.errors = errors
        self.status = status


class HttpAuthError(Exception):
    """`auth_error_style = "http"`: an auth failure answers HTTP 401 instead of a GraphQL error."""
