"""`/api/health` (the process answers), `/api/ready` (it can serve: database reachable, not draining)
and `/api/metrics` (Prometheus text).

Health and readiness are unauthenticated, for the platform's probes; neither reveals more than up or
down. Metrics take a bearer token (see there).
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.auth import state_of
from api.problems import Problem
from api.schemas import Health
from shared import telemetry

router = APIRouter(prefix="/api", tags=["health"])
log = logging.getLogger("caratflow.api")
_READY_TIMEOUT_SECONDS = 2.0


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get("/ready", response_model=Health, responses={503: {"model": Health}}, summary="Readiness")
async def ready(request: Request) -> JSONResponse:
    state = state_of(request)
    if state.draining:
        return _unready("draining")
    try:
        async with asyncio.timeout(_READY_TIMEOUT_SECONDS):
            pool = await state.db()
            async with pool.connection() as conn:
                await conn.execute("SELECT version FROM dataset_version")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the cause goes to the log
        log.warning("not ready: database check failed", extra={"error": repr(exc)})
        return _unready("database unavailable")
    return JSONResponse({"status": "ready"}, headers={"Cache-Control": "no-store"})


def _unready(status: str) -> JSONResponse:
    return JSONResponse({"status": status}, status_code=503, headers={"Cache-Control": "no-store", "Retry-After": "5"})


@router.get(
    "/metrics",
    summary="Prometheus metrics (bearer token API_METRICS_TOKEN)",
    responses={200: {"content": {"text/plain": {}}}, 401: {}, 404: {}},
)
async def metrics(request: Request) -> Response:
    """For a self-hosted Prometheus, which cannot sign requests: a bearer token from the settings
    instead, compared in constant time. Without API_METRICS_TOKEN the route does not exist (404)."""
    token = state_of(request).settings.api_metrics_token
    if token is None:
        raise Problem(404, "not-found", "Not found", "Metrics are off.", "Set API_METRICS_TOKEN to serve /api/metrics.")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # The scheme is case-insensitive (RFC 9110); a bare token without it is refused like a wrong one.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise Problem(
            401,
            "unauthenticated",
            "Unauthenticated",
            "Metrics need the bearer token.",
            "Send Authorization: Bearer <API_METRICS_TOKEN>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # The queue gauges read PostgreSQL synchronously: off the event loop.
    body, content_type = await asyncio.to_thread(telemetry.prometheus_text)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
