"""Limits on the request head (request line, header fields, the time to send them) under `caratflow serve`.

uvicorn's httptools protocol keeps whatever head a client sends: the target grows in `on_url`, a header
grows inside httptools until it ends, so four connections each sending a 64 MiB header took the server
from 108 to 401 MB (issue 10). And its keep-alive timer stops at a connection's first byte, while a new
connection has no timer at all, so a client may trickle a head forever. This protocol refuses a request
line over `api_max_request_line_bytes` with 414, header fields over `api_max_header_bytes` or more than
`api_max_headers` of them with 431, as soon as the limit is crossed and without reading the rest, and
answers 408 to a head not complete `api_header_timeout_seconds` after the connection opened or its
previous response ended. Every refusal is a problem document, then the connection closes.

In Azure the Functions host's front end parses HTTP and applies its own limits before the app sees a
request, so this applies to `caratflow serve` only. It lives in api/ beside the body limit of
api/middleware.py: both are the API's edge, this one below ASGI, where the bytes are still unparsed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.middleware import HEADER
from api.problems import Problem, problem_response
from shared.config import Settings
from shared.logs import correlated, new_correlation_id

log = logging.getLogger("caratflow.api")

# The parser is fed this much at a time, so that what it holds of an unfinished header (which httptools
# keeps to itself until the header ends) is known to within one piece.
PIECE_BYTES = 8192
# Besides its target, a request line holds the method, two spaces and "HTTP/1.1\r\n".
_LINE_FRAME_BYTES = len(b"  HTTP/1.1\r\n")
# A header field as sent: name, ": ", value, CRLF.
_FIELD_FRAME_BYTES = len(b": \r\n")


@dataclass(frozen=True)
class HeadLimits:
    request_line_bytes: int
    header_bytes: int
    headers: int
    timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HeadLimits:
        return cls(
            request_line_bytes=settings.api_max_request_line_bytes,
            header_bytes=settings.api_max_header_bytes,
            headers=settings.api_max_headers,
            timeout_seconds=settings.api_header_timeout_seconds,
        )


def http_protocol(settings: Settings) -> Callable[..., asyncio.Protocol]:
    """What `uvicorn.Config(http=...)` takes: the protocol with the settings' limits."""
    return functools.partial(HeadLimitedProtocol, limits=HeadLimits.from_settings(settings))


class HeadRefused(Exception):
    """Raised in a parser callback to stop parsing; httptools wraps it in an HttpParserCallbackError."""


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, counting the head as the parser reports it.

    The head timer complements uvicorn's keep-alive timer (`timeout_keep_alive`, 5 s), which closes a
    connection idle after a response but stops at its first byte and never runs on a new connection.
    """

    def __init__(self, *args: Any, limits: HeadLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_begun = False  # a head has begun and is not complete yet
        self._line_bytes = 0
        self._field_bytes = 0
        self._fields = 0
        self._progressed = False  # the parser called back during the current piece
        self._unreported = 0  # bytes of whole pieces fed since the parser last called back
        self._refusal: Problem | None = None

    # The connection: a head timer from its start and from the end of each response.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        # A queued (pipelined) request's head is already complete: it needs no timer.
        queued = bool(self.pipeline)
        super().on_response_complete()
        if not queued and not self.transport.is_closing():
            self._start_head_timer()

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.limits.timeout_seconds, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._head_begun:
            # Idle since it opened or since its last response: nothing was asked, so nothing to answer.
            self.transport.close()
            return
        seconds = f"{self.limits.timeout_seconds:g}"
        self._refuse(
            Problem(
                408,
                "request-timeout",
                "Request timeout",
                f"The request line and headers did not arrive within {seconds} s.",
                "Send the request line and headers at once, then the body.",
            )
        )

    # Bytes in: fed in pieces, so that a header httptools is still collecting cannot grow unseen.

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), PIECE_BYTES):
            if self.transport.is_closing():
                return  # refused, or a malformed request answered: the rest is not read
            piece = view[start : start + PIECE_BYTES]
            self._progressed = False
            super().data_received(piece)  # type: ignore[arg-type]
            self._unreported = 0 if self._progressed else self._unreported + len(piece)
            # No callback for more than a whole header block: httptools is collecting one field that long.
            if self._unreported > self.limits.header_bytes and not self.transport.is_closing():
                self._refuse(self._headers_too_large(f"A header field exceeds {self.limits.header_bytes} bytes."))

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error here, those our callbacks raise included.
        self._refuse(
            self._refusal
            or Problem(
                400,
                "malformed-request",
                "Malformed request",
                "The request is not valid HTTP/1.1.",
                "Check the request line and header syntax; header values may not hold control characters.",
            )
        )

    # Parser callbacks: count the head as it arrives.

    def on_message_begin(self) -> None:
        self._progressed = True
        self._head_begun = True
        self._line_bytes = self._field_bytes = self._fields = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._progressed = True
        if not self._line_bytes:
            self._line_bytes = len(self.parser.get_method()) + _LINE_FRAME_BYTES
        self._line_bytes += len(url)
        if self._line_bytes > self.limits.request_line_bytes:
            self._stop(
                Problem(
                    414,
                    "request-line-too-long",
                    "Request line too long",
                    f"The request line exceeds {self.limits.request_line_bytes} bytes.",
                    "Shorten the path and query string: leave out parameters at their defaults.",
                )
            )
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Trailers of a chunked body come here too, and count against the same limits.
        self._progressed = True
        self._fields += 1
        self._field_bytes += len(name) + len(value) + _FIELD_FRAME_BYTES
        if self._fields > self.limits.headers:
            self._stop(self._headers_too_large(f"The request has more than {self.limits.headers} header fields."))
        if self._field_bytes > self.limits.header_bytes:
            self._stop(self._headers_too_large(f"The header fields exceed {self.limits.header_bytes} bytes."))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._progressed = True
        self._head_begun = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._progressed = True
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._progressed = True
        super().on_message_complete()

    # Refusing.

    @staticmethod
    def _headers_too_large(detail: str) -> Problem:
        return Problem(
            431,
            "headers-too-large",
            "Request header fields too large",
            detail,
            "Send fewer and shorter headers; the API reads only Authorization, If-None-Match and a few others.",
        )

    def _stop(self, problem: Problem) -> NoReturn:
        """Stop the parser where it stands; uvicorn then calls send_400_response, which answers `problem`."""
        self._refusal = problem
        raise HeadRefused(problem.slug)

    def _refuse(self, problem: Problem) -> None:
        self._stop_head_timer()
        request_id = new_correlation_id()
        with correlated(correlation_id=request_id):
            log.warning(
                "request head refused",
                extra={"status": problem.status, "problem": problem.slug, "client": _address(self.client)},
            )
            if self.cycle is not None and not self.cycle.response_complete:
                # The app is answering this connection's request (a trailer went over): a second answer
                # would corrupt the first, so the connection just ends.
                self.transport.close()
                return
            response = problem_response(problem)
        headers = [
            *self.server_state.default_headers,
            *response.raw_headers,
            (HEADER.encode(), request_id.encode()),
            (b"connection", b"close"),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(STATUS_LINE[problem.status] + head + b"\r\n" + response.body)
        self.transport.close()


def _address(client: tuple[str, int] | None) -> str | None:
    return f"{client[0]}:{client[1]}" if client else None
