"""One error envelope for every 4xx and 5xx: RFC 9457 problem+json with a correlation id and a hint."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.logs import correlation_id

log = logging.getLogger("caratflow.api")
MEDIA_TYPE = "application/problem+json"


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


def internal_error() -> Problem:
    return Problem(
        500,
        "internal-error",
        "Internal error",
        "The request failed on our side.",
        "Retry later; quote the correlation_id if you contact us.",
    )
