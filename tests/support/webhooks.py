"""A webhook receiver on 127.0.0.1 and the targets that point at it, for the notification tests."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ports import free_port

from shared.notify.targets import EventKind, WebhookFormat, WebhookTarget

TOKEN = "XoXb-SECRET-T0KEN-9f8e7d"  # what a Slack or Teams URL carries; must never leave the settings


class Webhook:
    """A webhook receiver on 127.0.0.1: answers each request from a script (then 200), records them all."""

    def __init__(self, delay: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: deque[tuple[int, dict[str, str], str]] = deque()
        self.delay = delay
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner._lock:
                    owner.requests.append({"path": self.path, "body": body, "at": time.monotonic()})
                    status, headers, text = owner.script.popleft() if owner.script else (200, {}, "ok")
                time.sleep(owner.delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads `requests`."""

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}/{TOKEN}"

    def answer(self, *responses: tuple[int, dict[str, str], str]) -> None:
        self.script.extend(responses)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def target(
    receiver: Webhook,
    name: str = "ops",
    fmt: WebhookFormat = "slack",
    events: tuple[EventKind, ...] | None = None,
) -> WebhookTarget:
    return WebhookTarget(
        name=name,
        url=receiver.url(name),
        format=fmt,
        events=events or ("run_succeeded", "run_partially_succeeded", "run_failed", "consolidation_failed"),
    )
