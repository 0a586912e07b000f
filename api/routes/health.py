"""`/api/health` (the process answers) and `/api/ready` (it can serve: database reachable, not draining).

Both are unauthenticated, for the platform's probes; neither reveals more than up or down.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.auth import state_of
from api.schemas import Health

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
