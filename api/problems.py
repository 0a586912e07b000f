"""One error envelope for every 4xx and 5xx: RFC 9457 problem+json with a correlation id and a hint."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db.pools import unavailable
from shared.logs import correlation_id

log = logging.getLogger("caratflow.api")
MEDIA_TYPE = "application/problem+json"
# After a database outage the pool reconnects within a second or two (shared/db/pools.py).
RETRY_AFTER_SECONDS = 2


class Problem(Exception):
    """Raise to answer with a problem document. `slug` names the problem type."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        hint: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail, self.hint = status, slug, title, detail, hint
        self.headers = headers or {}
        self.extra = extra or {}


def problem_response(problem: Problem) -> JSONResponse:
    body = {
        "type": f"urn:caratflow:problem:{problem.slug}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "hint": problem.hint,
        "correlation_id": correlation_id.get(),
        **problem.extra,
    }
    return JSONResponse(body, status_code=problem.status, headers=problem.headers, media_type=MEDIA_TYPE)


def unauthorized() -> Problem:
    # One answer for every authentication failure; the reason goes to the log only.
    return Problem(
        401,
        "unauthenticated",
        "Unauthenticated",
        "The request is not signed with an active key.",
        "Sign the request as documented in caratflow_client/signing.py, with a fresh nonce and the current time.",
        headers={"WWW-Authenticate": "CF-HMAC-SHA256"},
    )


_HTTP_PROBLEMS = {
    404: ("not-found", "Not found", "Check the path against the API document at /api/openapi.json."),
    405: ("method-not-allowed", "Method not allowed", "See /api/openapi.json for the methods each path takes."),
}


def install(app: FastAPI) -> None:
    """Route every error FastAPI or Starlette can produce through the one envelope."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(part) for part in error["loc"]), "message": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        return problem_response(
            Problem(
                400,
                "invalid-request",
                "Invalid request",
                detail,
                "Fix the parameters listed in `errors`; /api/openapi.json lists every parameter and its range.",
                extra={"errors": errors},
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title, hint = _HTTP_PROBLEMS.get(exc.status_code, ("http-error", "HTTP error", "See /api/docs."))
        return problem_response(
            Problem(exc.status_code, slug, title, str(exc.detail), hint, headers=dict(exc.headers or {}))
        )

    # psycopg_pool's errors (PoolTimeout, TooManyRequests, PoolClosed) are OperationalErrors too.
    @app.exception_handler(psycopg.OperationalError)
    async def _database(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        if not unavailable(exc):
            raise exc  # not an outage but a bug of ours: api/middleware.py logs it and answers 500
        log.warning(
            "database unavailable", extra={"path": request.url.path, "error": f"{type(exc).__name__}: {exc}"[:500]}
        )
        return problem_response(database_unavailable())


def database_unavailable() -> Problem:
    # What failed stays in the log: the caller learns only that retrying later is the remedy.
    return Problem(
        503,
        "database-unavailable",
        "Service unavailable",
        "The catalogue database cannot be reached right now.",
        "Retry after the seconds in Retry-After; /api/ready shows when the service is back.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def internal_error() -> Problem:
    return Problem(
        500,
        "internal-error",
        "Internal error",
        "The request failed on our side.",
        "Retry later; quote the correlation_id if you contact us.",
    )
