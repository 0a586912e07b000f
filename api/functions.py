"""The API's one HTTP function in Azure: every path goes to the FastAPI app.

The Functions host matches HTTP routes in the order functions are registered, by name, not by
specificity, so a FastAPI catch-all beside other HTTP functions can shadow them (durable-functions.md,
"the route-order trap"). caratflow therefore has exactly one HTTP function, on `{*route}`, and
every HTTP endpoint, operator ones included, is a FastAPI route behind it; a test holds that.
It also takes the durable client binding and leaves it in `durable_client` for routes that start or
query orchestrations; locally, `caratflow serve` sets the local host's client there instead.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()
durable_client: ContextVar[Any] = ContextVar("durable_client", default=None)
_middleware: func.AsgiMiddleware | None = None


def _asgi() -> func.AsgiMiddleware:
    global _middleware  # one app per worker process, built on the first request
    if _middleware is None:
        from api.asgi import from_environment

        _middleware = func.AsgiMiddleware(from_environment())
    return _middleware


@bp.route(
    route="{*route}",
    auth_level=func.AuthLevel.ANONYMOUS,  # requests are signed; the API checks every one itself
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
)
@bp.durable_client_input(client_name="client")
async def http_api(
    req: func.HttpRequest, context: func.Context, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    token = durable_client.set(client)
    try:
        return await _asgi().handle_async(req, context)
    finally:
        durable_client.reset(token)
