"""The API's one HTTP function in Azure: every path goes to the FastAPI app.

The Functions host matches HTTP routes in the order functions are registered, by name, not by
specificity, so a FastAPI catch-all beside other HTTP functions can shadow them. caratflow therefore
has exactly one HTTP function, on `{*route}`, and every HTTP endpoint, operator ones included, is a
FastAPI route behind it; a test holds that. It also takes the durable client binding and leaves it in
`api.deps.durable_client` for routes that start or query orchestrations; under `caratflow serve` the app
state holds the local host's client instead.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from api.deps import durable_client

bp = df.Blueprint()
# The path of the URL the host received, escapes intact; see `_SignedPath`.
_request_path: ContextVar[bytes | None] = ContextVar("request_path", default=None)
_middleware: func.AsgiMiddleware | None = None


def _asgi() -> func.AsgiMiddleware:
    global _middleware  # one app per worker process, built on the first request
    if _middleware is None:
        from api.asgi import from_environment

        # azure-functions leaves AsgiMiddleware's __init__ unannotated.
        _middleware = func.AsgiMiddleware(_SignedPath(from_environment()))  # type: ignore[no-untyped-call]
    return _middleware


def url_path(url: str) -> bytes:
    """The path of `url` exactly as written: no urllib parsing, which drops TAB, CR and LF."""
    after_scheme = url.split("://", 1)[-1]
    path = "/" + after_scheme.split("/", 1)[1] if "/" in after_scheme else "/"
    return path.split("?", 1)[0].split("#", 1)[0].encode("utf-8")


class _SignedPath:
    """Gives the app the request's path still percent-encoded as `raw_path`, which the signature covers
    (api/auth.py `signed_path`). The SDK's scope sets `raw_path` to the DECODED path, under which
    `a%0Ab` and `a%2525b` would verify as other paths."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw = _request_path.get()
        if scope["type"] == "http" and raw is not None:
            scope = {**scope, "raw_path": raw}
        await self.app(scope, receive, send)


@bp.route(
    route="{*route}",
    auth_level=func.AuthLevel.ANONYMOUS,  # requests are signed; the API checks every one itself
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
)
@bp.durable_client_input(client_name="client")
async def http_api(
    req: func.HttpRequest, context: func.Context, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    token, path = durable_client.set(client), _request_path.set(url_path(req.url))
    try:
        response: func.HttpResponse = await _asgi().handle_async(req, context)
        return response
    finally:
        _request_path.reset(path)
        durable_client.reset(token)
