"""`/api/health` (the process answers), `/api/ready` (it can serve: not draining, and each dependency
up, api/readiness.py) and `/api/metrics` (Prometheus text).

Health and readiness are unauthenticated, for the platform's probes; neither reveals more than up or
down (per dependency, by name; never an error text or a host). Metrics take a bearer token (see there).
"""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import AppState
from api.problems import RETRY_AFTER_SECONDS, Problem
from api.schemas import Health
from shared import telemetry

router = APIRouter(prefix="/api", tags=["health"])
_NO_STORE = {"Cache-Control": "no-store"}


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


@router.get("/ready", response_model=Health, responses={503: {"model": Health}}, summary="Readiness")
async def ready(state: AppState) -> JSONResponse:
    if state.draining:
        return JSONResponse({"status": "draining"}, status_code=503, headers={**_NO_STORE, "Retry-After": "5"})
    checks = await state.readiness.report()
    if all(answer == "up" for answer in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks}, headers=_NO_STORE)
    headers = {**_NO_STORE, "Retry-After": str(RETRY_AFTER_SECONDS)}
    return JSONResponse({"status": "unready", "checks": checks}, status_code=503, headers=headers)


@router.get(
    "/metrics",
    summary="Prometheus metrics (bearer token API_METRICS_TOKEN)",
    responses={200: {"content": {"text/plain": {}}}, 401: {}, 404: {}},
)
async def metrics(request: Request, state: AppState) -> Response:
    """For a self-hosted Prometheus, which cannot sign requests: a bearer token from the settings
    instead, compared in constant time. Without API_METRICS_TOKEN the route does not exist (404)."""
    token = state.settings.api_metrics_token
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
