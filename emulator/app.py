"""The emulator as a raw ASGI application: POST /api/diamonds (GraphQL) and the admin endpoints.

Fault injection lives here because faults are HTTP-level behaviour: a 429 or a truncated body is
decided before or after the GraphQL work, never inside it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from emulator import admin
from emulator.errors import (
    BAD_REQUEST,
    INTERNAL_SERVER_ERROR,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    UNAUTHENTICATED,
    UNAUTHORIZED_MESSAGE,
    HttpAuthError,
    RequestError,
    error_entry,
)
from emulator.faults import Fault
from emulator.state import EmulatorState

GRAPHQL_PATH = "/api/diamonds"
ADMIN_PREFIX = "/_emulator/"
MAX_BODY_BYTES = 1 << 20
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
logger = logging.getLogger("emulator")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_BAD_GATEWAY = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def dumps(payload: Any) -> bytes:
    """Compact JSON; NaN and Infinity as bare literals, as a broken supplier's encoder writes them."""
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        # A lone surrogate (hostile items) has no UTF-8 form: escaped, it goes out as "\udXXX".
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def _errors(message: str, code: str) -> bytes:
    return dumps({"errors": [error_entry(message, code)]})


class EmulatorApp:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        try:
            if path == GRAPHQL_PATH:
                await self._graphql(scope, receive, send)
            elif path.startswith(ADMIN_PREFIX):
                await self._admin(scope, receive, send)
            else:
                await _send(send, 404, _errors(f"Not found: {path}", BAD_REQUEST))
        except Exception:
            # A bug in the emulator: logged with its traceback and answered as a 500, never hidden.
            logger.exception("emulator failed on %s %s", scope.get("method"), path)
            self.state.stats.request("crash", "internal_error")
            await _send(send, 500, _errors("Internal server error", INTERNAL_SERVER_ERROR))

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client is not None and client[0] not in LOOPBACK:
            await _send(send, 403, dumps({"detail": "admin endpoints answer loopback clients only"}))
            return
        body = await _read_body(receive)
        if body is None:
            await _send(send, 413, dumps({"detail": f"body over {MAX_BODY_BYTES} bytes"}))
            return
        status, payload = admin.handle(self.state, scope["method"], scope["path"], scope.get("query_string", b""), body)
        await _send(send, status, dumps(payload))

    async def _graphql(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        if scope["method"] != "POST":
            await _send(send, 405, _errors("Use POST with a JSON body", BAD_REQUEST), [(b"allow", b"POST")])
            return
        body = await _read_body(receive)
        if body is None:
            await _send(send, 413, _errors(f"Body over {MAX_BODY_BYTES} bytes", BAD_REQUEST))
            return
        request, problem = _graphql_request(body)
        if request is None:
            state.stats.request("invalid", "bad_request")
            await _send(send, 400, _errors(problem, BAD_REQUEST))
            return
        try:
            prepared = state.service.prepare(*request)
        except RequestError as exc:
            state.stats.request("invalid", exc.errors[0]["extensions"]["code"].lower())
            await _send(send, exc.status, dumps({"errors": exc.errors}))
            return

        fault = None
        if state.faults.applies_to(prepared.kind) and _in_failing_band(
            prepared.raw_variables, state.faults.settings.failing_dpc_from
        ):
            state.stats.request(prepared.kind, "failing_band")
            await _send(send, 500, _errors("Internal server error", INTERNAL_SERVER_ERROR))
            return
        if state.faults.applies_to(prepared.kind):
            delay = state.faults.latency_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            fault = state.faults.draw()
        if fault is not None and await self._fault_answered(fault, send):
            state.stats.request(prepared.kind, fault.value)
            return

        try:
            result = state.service.execute(prepared, _bearer(scope), force_expired=fault is Fault.EXPIRED_TOKEN)
        except HttpAuthError:
            state.stats.request(prepared.kind, "unauthenticated")
            await _send(send, 401, _errors(UNAUTHORIZED_MESSAGE, UNAUTHENTICATED), [(b"www-authenticate", b"Bearer")])
            return
        payload = dumps(result)
        if fault is Fault.MALFORMED_JSON:
            payload = payload[: max(1, len(payload) // 2)]  # cut mid-document: never valid JSON
        outcome = fault.value if fault else ("errors" if "errors" in result else "ok")
        state.stats.request(prepared.kind, outcome)
        await _send(send, 200, payload)

    async def _fault_answered(self, fault: Fault, send: Send) -> bool:
        """Answer the faults that replace the response; False for those that alter it later."""
        settings = self.state.faults.settings
        retry_after = [(b"retry-after", str(settings.retry_after_seconds).encode())]
        if fault is Fault.RATE_LIMITED:
            await _send(send, 429, _errors("Too many requests", RATE_LIMITED), retry_after)
        elif fault is Fault.SERVER_ERROR:
            status = self.state.faults.server_error_status()
            if status == 502:  # what a load balancer in front of the API sends: HTML, not JSON
                await _send(send, 502, _BAD_GATEWAY, content_type=b"text/html")
            elif status == 503:
                await _send(send, 503, _errors("Service temporarily unavailable", SERVICE_UNAVAILABLE), retry_after)
            else:
                await _send(send, 500, _errors("Internal server error", INTERNAL_SERVER_ERROR))
        elif fault is Fault.GRAPHQL_ERROR:
            await _send(send, 200, _errors("Internal server error", INTERNAL_SERVER_ERROR))
        elif fault is Fault.TIMEOUT:
            await asyncio.sleep(settings.timeout_hang_seconds)  # then answer normally, too late
            return False
        else:
            return False
        return True


def _graphql_request(body: bytes) -> tuple[tuple[str, dict[str, Any], str | None] | None, str]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"Body is not JSON: {exc}"
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return None, 'Expected a JSON object with a "query" string'
    variables = payload.get("variables") or {}
    operation = payload.get("operationName")
    if not isinstance(variables, dict):
        return None, '"variables" must be a JSON object'
    if operation is not None and not isinstance(operation, str):
        return None, '"operationName" must be a string'
    return (payload["query"], variables, operation), ""


def _in_failing_band(variables: dict[str, Any], failing: list[int]) -> bool:
    if not failing or "offset" not in variables:
        return False
    query = variables.get("query")
    band = query.get("dollar_per_carat") if isinstance(query, dict) else None
    return isinstance(band, dict) and band.get("from") in failing


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
