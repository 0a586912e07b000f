"""The outermost layer of every request, as plain ASGI (no per-request task, unlike BaseHTTPMiddleware).

It gives the request its correlation id (the caller's X-Correlation-Id when well-formed, else a new
one) for the response headers and every log line; reads the body up to the size limit before the
app sees it (an oversized body is refused while it is read, never buffered whole); adds the
security headers; turns any unhandled error into the problem envelope; writes one access log line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from api.problems import Problem, internal_error, problem_response
from shared import telemetry
from shared.logs import correlation_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("caratflow.api")
HEADER = "x-correlation-id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
]
# Media links are made to be embedded by partners' pages on other origins (<img>, <video>); every
# other answer is data for same-origin or signed callers only.
_CORP_SAME = (b"cross-origin-resource-policy", b"same-origin")
_CORP_EMBEDDABLE = (b"cross-origin-resource-policy", b"cross-origin")
# The interactive docs load Swagger UI's script and style from its CDN; everything else is data.
_CSP_API = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_CSP_DOCS = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src https://cdn.jsdelivr.net; img-src https://fastapi.tiangolo.com data:; connect-src 'self'",
)


class BodyTooLarge(Exception):
    pass


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, docs_paths: frozenset[str], embeddable_prefix: str
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.docs_paths = docs_paths
        self.embeddable_prefix = embeddable_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(HEADER.encode(), b"").decode("latin-1")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        token = correlation_id.set(request_id)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        csp = _CSP_DOCS if scope["path"] in self.docs_paths else _CSP_API
        corp = _CORP_EMBEDDABLE if scope["path"].startswith(self.embeddable_prefix) else _CORP_SAME

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (HEADER.encode(), request_id.encode()),
                    *_SECURITY_HEADERS,
                    csp,
                    corp,
                ]
            await send(message)

        try:
            try:
                body = await self._read_body(headers, receive)
            except BodyTooLarge:
                await self._answer(
                    Problem(
                        413,
                        "body-too-large",
                        "Body too large",
                        f"The request body exceeds {self.max_body_bytes} bytes.",
                        "Send a smaller body; searches take their parameters in the query string.",
                    ),
                    send_with_headers,
                )
                return
            await self.app(scope, _replay(body, receive), send_with_headers)
        except Exception:
            log.exception("unhandled error", extra={"path": scope["path"]})
            if not status["sent"]:
                await self._answer(internal_error(), send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            # The router leaves the matched route in the scope; its template keeps the metric's series few.
            route = getattr(scope.get("route"), "path", "unmatched")
            telemetry.record_request(route=route, method=scope["method"], status=status["code"], seconds=seconds)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status["code"],
                    "ms": round(seconds * 1000, 2),
                },
            )
            correlation_id.reset(token)

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _answer(problem: Problem, send: Send) -> None:
        response = problem_response(problem)
        await response({"type": "http"}, _replay(b"", None), send)


def _replay(body: bytes, then: Receive | None) -> Receive:
    """Hand the app the body already read, then the connection's own messages (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive
