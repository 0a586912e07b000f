"""Request-head limits under `caratflow serve`, over raw sockets to the real app: an oversized or slow
request line or header block is refused (414, 431, 408) as soon as a limit is crossed, before it fills memory.

The server runs the protocol `caratflow serve` runs, with a 1 s header timeout so the slow-head cases
finish quickly; the size limits are the defaults (8192-byte request line, 16 KiB of headers, 100 fields).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ports import free_port
from served import serve

from api.app import create_app
from api.request_head import http_protocol
from caratflow_client import CaratflowClient
from caratflow_client.signing import sign_request
from shared.config import Settings

TIMEOUT = 1.0
ATTACK_BYTES = 64 << 20


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json", self.headers
        document: dict[str, Any] = json.loads(self.body)
        assert document["status"] == self.status
        assert document["type"].startswith("urn:caratflow:problem:")
        assert document["correlation_id"] == self.headers["x-correlation-id"]
        return document


@pytest.fixture
def head_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={"api_header_timeout_seconds": TIMEOUT})


@pytest.fixture
def port(head_settings: Settings, database_url: str) -> Iterator[int]:
    port = free_port()
    app = create_app(head_settings, url=database_url)
    server, thread = serve(app, port, http=http_protocol(head_settings))
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_answer(sock: socket.socket) -> Answer | None:
    """One response off the socket, or None if the server closed it without answering."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = _recv(sock)
        if not chunk:
            assert not data, f"connection closed inside a response head: {data!r}"
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = _recv(sock)
        assert chunk, "connection closed inside a response body"
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        # The server closed with our unread bytes in its buffer; what it wrote before was read first.
        return b""


def closed(sock: socket.socket) -> bool:
    return _recv(sock) == b""


def ask(port: int, head: bytes) -> Answer:
    with connect(port) as sock:
        sock.sendall(head)
        answer = read_answer(sock)
    assert answer is not None
    return answer


def get(target: bytes = b"/api/health", fields: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + fields + b"\r\n"


def signed_get(key, query: str = "limit=1") -> bytes:
    signature = sign_request(key_id=key.key_id, secret=key.secret, method="GET", path="/api/v1/diamonds", query=query)
    return get(f"/api/v1/diamonds?{query}".encode(), f"Authorization: {signature.header()}\r\n".encode())


def flood(port: int, opening: bytes) -> tuple[Answer | None, int, bool]:
    """`opening`, then 64 MiB that never end the head, from a thread; the answer, the bytes the server
    had accepted when it came, and whether the sender was cut off before the end."""
    sock = connect(port)
    accepted = 0
    cut_off = threading.Event()

    def pump() -> None:
        nonlocal accepted
        filler = memoryview(b"a" * 65536)
        try:
            sock.sendall(opening)
            while accepted < ATTACK_BYTES:
                accepted += sock.send(filler)
        except (BrokenPipeError, ConnectionResetError):
            cut_off.set()

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    with sock:
        answer = read_answer(sock)
        accepted_then = accepted
        sender.join(30)
    return answer, accepted_then, cut_off.is_set()


def test_an_overlong_request_line_gets_414_before_the_rest_is_read(port) -> None:
    assert ask(port, get(b"/api/health?pad=" + b"a" * 8000)).status == 200
    answer = ask(port, get(b"/api/health?pad=" + b"a" * 8200))
    assert answer.status == 414
    assert answer.problem()["type"] == "urn:caratflow:problem:request-line-too-long"
    assert answer.headers["connection"] == "close"

    flooded, accepted, cut_off = flood(port, b"GET /api/health?pad=")
    assert flooded is not None
    assert flooded.status == 414
    # Before the limits uvicorn took all 64 MiB (6 s), then answered 400.
    assert accepted < ATTACK_BYTES // 4
    assert cut_off


def test_oversized_headers_get_431(port) -> None:
    assert ask(port, get(fields=b"X-Pad: " + b"a" * 15000 + b"\r\n")).status == 200
    for fields in (
        b"X-Pad: " + b"a" * 17000 + b"\r\n",  # one field, complete
        b"".join(b"X-Pad-%d: " % n + b"a" * 2000 + b"\r\n" for n in range(9)),  # the block
    ):
        answer = ask(port, get(fields=fields))
        assert answer.status == 431
        assert answer.problem()["type"] == "urn:caratflow:problem:headers-too-large"

    flooded, accepted, cut_off = flood(port, get()[:-2] + b"X-Pad: ")
    assert flooded is not None
    assert flooded.status == 431
    assert accepted < ATTACK_BYTES // 4
    assert cut_off


def test_too_many_header_fields_get_431(port) -> None:
    def fields(count: int) -> bytes:  # Host is one more
        return b"".join(b"X-N-%d: 1\r\n" % n for n in range(count))

    assert ask(port, get(fields=fields(99))).status == 200
    answer = ask(port, get(fields=fields(100)))
    assert answer.status == 431
    assert "more than 100 header fields" in answer.problem()["detail"]


def trickle(sock: socket.socket, data: bytes, interval: float) -> int:
    """Send `data` a byte every `interval` s until done, answered or cut off; the bytes sent."""
    for sent, byte in enumerate(data):
        if select.select([sock], [], [], 0)[0]:
            return sent  # answered, or closed
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return sent
        time.sleep(interval)
    return len(data)


def test_a_slow_head_is_cut_off_while_others_are_served(port, search_key) -> None:
    started = time.monotonic()
    with connect(port) as slow, connect(port) as silent, connect(port) as slow_body:
        # A head sent at once and a body taking longer than the header timeout: not a slow head.
        slow_body.sendall(b"POST /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\n")
        body_sender = threading.Thread(target=trickle, args=(slow_body, b"abc", 0.6), daemon=True)
        body_sender.start()
        slow.sendall(b"G")
        # A signed client on the same server is served meanwhile.
        with CaratflowClient(f"http://127.0.0.1:{port}", search_key.key_id, search_key.secret) as client:
            assert client.search(limit=1)["data"] == []
        trickled = trickle(slow, get()[1:], 0.2)
        answer = read_answer(slow)
        assert answer is not None, "closed without an answer"
        assert answer.status == 408
        assert answer.problem()["type"] == "urn:caratflow:problem:request-timeout"
        assert closed(slow)
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 1
        assert trickled < len(get()) - 1
        # A connection that never sent a byte is closed too, without an answer.
        assert read_answer(silent) is None
        body_sender.join(5)
        body_answer = read_answer(slow_body)
        assert body_answer is not None
        assert body_answer.status == 405


def test_the_timer_starts_again_after_each_response(port, search_key) -> None:
    with connect(port) as sock:
        for _ in range(2):  # two requests, 0.6 s apart: 1.2 s on a connection with a 1 s head timer
            time.sleep(0.6)
            sock.sendall(signed_get(search_key))
            answer = read_answer(sock)
            assert answer is not None
            assert answer.status == 200
        # After the last response, a head that never ends is cut off a timeout later.
        sock.sendall(b"GET /api/hea")
        started = time.monotonic()
        answer = read_answer(sock)
        assert answer is not None
        assert answer.status == 408
        assert time.monotonic() - started < TIMEOUT + 0.5


HOSTILE = {
    "nul-in-value": get(fields=b"X-Pad: a\x00b\r\n"),
    "nul-in-correlation-id": get(fields=b"X-Correlation-Id: \x00\r\n"),
    "nul-in-path": get(b"/api/health\x00"),
    "nul-in-query": get(b"/api/health?q=\x00"),
    "utf8-in-path": get(b"/api/health\xc3\xa9"),
    "latin1-in-query": get(b"/api/v1/diamonds?fancy_color=\xff"),
    "non-ascii-in-value": get(fields=b"X-Pad: caf\xc3\xa9 \xff\r\n"),
    "non-ascii-authorization": get(b"/api/v1/diamonds", b"Authorization: CF-HMAC-SHA256 \xff\xfe\r\n"),
    "non-ascii-etag-and-correlation-id": get(fields=b'If-None-Match: "\xff"\r\nX-Correlation-Id: \xe2\x82\xac\r\n'),
    "non-ascii-in-name": get(fields=b"X\xff: 1\r\n"),
}


def test_hostile_bytes_get_a_problem_not_a_500(port) -> None:
    # One server for every case: each answer is on a connection of its own.
    for case, head in HOSTILE.items():
        answer = ask(port, head)
        assert answer.status < 500, case
        if answer.status >= 400:
            assert answer.headers["content-type"] == "application/problem+json", case
            answer.problem()
