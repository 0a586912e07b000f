"""`create_app`: the FastAPI application both hosts serve (function_app.py in Azure, `caratflow serve`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import problems
from api.middleware import EdgeMiddleware
from api.routes import dead_letters, diamonds, health, media, pricing, runs
from api.state import ApiState
from shared import logs
from shared.catalogue.media import PATH_PREFIX as MEDIA_PATH_PREFIX
from shared.config import Settings
from shared.db.connect import database_url
from shared.secrets import CachedSecretStore, open_secret_store

DOCS_PATHS = frozenset({"/api/docs", "/api/redoc"})
DESCRIPTION = """Search the priced diamond catalogue.

Every `/api/v1` request is signed: `Authorization: CF-HMAC-SHA256 key_id=..., timestamp=..., nonce=...,
signature=...` (see `caratflow_client/signing.py`; `caratflow_client` signs for you). Errors are
`application/problem+json` with a `correlation_id`; send `X-Correlation-Id` to choose it.
"""


def create_app(
    settings: Settings, *, secrets: CachedSecretStore | None = None, url: str | None = None, durable: Any = None
) -> FastAPI:
    """The API; `durable` is the local host's async durable client (Azure passes its binding per request)."""
    logs.install_correlation()
    state = ApiState(settings, url or database_url(settings), secrets or open_secret_store(settings))
    state.durable = durable

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await state.close()

    app = FastAPI(
        title="caratflow search API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url="/api/redoc",
        lifespan=lifespan,
        # No redirect for a trailing slash: Starlette's would send the caller to whatever Host header
        # it carried (an open redirect); `/api/v1/diamonds/` is simply not a route.
        redirect_slashes=False,
    )
    app.state.api = state
    problems.install(app)
    app.include_router(health.router)
    app.include_router(diamonds.router)
    app.include_router(media.router)
    app.include_router(runs.router)
    app.include_router(dead_letters.router)
    app.include_router(pricing.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-Correlation-Id"],
            expose_headers=[
                "ETag",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "X-Correlation-Id",
            ],
            max_age=600,
        )
    # Outermost, so that even CORS refusals and crashes carry the correlation id and the envelope.
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.api_max_body_bytes,
        docs_paths=DOCS_PATHS,
        embeddable_prefix=MEDIA_PATH_PREFIX,
    )
    return app
