"""What routes take as parameters: the app state, a pooled connection, the durable client and the
authenticated caller, each a typed `Annotated` dependency.

`Connection` is the request's one connection: the caller check runs on it too, so a signed request
checks out one connection, not two. It is checked out once the request's body has arrived and goes
back to the pool when the handler returns, before the response is sent (`scope="function"`). So:
- a handler that holds it checks out no second one (the state's `connection()`): requests each holding
  one while waiting for another can take every connection of the pool and wait for each other;
- a streamed body (server-sent events) runs after it went back, and checks out its own per use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection

from api import auth
from api.auth import Principal
from api.problems import Problem
from api.state import ApiState

# The Functions host's durable client binding for this request, set by the HTTP function
# (api/functions.py); None under `caratflow serve`, where the app state holds the local host's client.
durable_client: ContextVar[Any] = ContextVar("durable_client", default=None)


async def _app_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api  # set by create_app
    return state


AppState = Annotated[ApiState, Depends(_app_state)]


async def _connection(request: Request, state: AppState) -> AsyncIterator[AsyncConnection]:
    # The body first: a client that sends it slowly must not hold a connection meanwhile (it is
    # bounded by API_MAX_BODY_BYTES and kept on the request, so the signature check reads it again free).
    await request.body()
    async with state.connection() as conn:
        yield conn


# One per request, shared by the caller check and the handler. A database that cannot be reached
# raises from the checkout, which api/problems.py answers with the 503 `database-unavailable`.
Connection = Annotated[AsyncConnection, Depends(_connection, scope="function")]


async def _durable_client(state: AppState) -> Any:
    client = durable_client.get() or state.durable
    if client is None:
        raise Problem(
            503,
            "no-durable-client",
            "Orchestrations unavailable",
            "This API process has no durable client: it runs neither under the Functions host nor with a local host.",
            "Run `caratflow serve` without --no-local-host, or call the API deployed to Azure.",
        )
    return client


# The Functions binding in Azure, the local host's client under `caratflow serve`: both answer the
# same async methods (the SDK's DurableOrchestrationClient), so route code is the same for both.
DurableClient = Annotated[Any, Depends(_durable_client)]


def _caller(scope: str) -> Any:
    async def caller(request: Request, state: AppState, conn: Connection) -> Principal:
        return await auth.authenticate(request, state, conn, scope)

    return Depends(caller)


SearchCaller = Annotated[Principal, _caller("search")]
AdminCaller = Annotated[Principal, _caller("admin")]
# Every pricing route, reads included: rules, previews and quotes show costs and margins (docs/pricing.md).
PricingCaller = Annotated[Principal, _caller("pricing")]
