"""Serve an ASGI app with uvicorn on 127.0.0.1 in a thread, for tests that talk real HTTP to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn


def serve(app: Callable[..., Any], port: int, **options: Any) -> tuple[uvicorn.Server, threading.Thread]:
    """`options` go to uvicorn.Config as they are, e.g. `http=` for the protocol `caratflow serve` uses."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("API server did not start")
        time.sleep(0.02)
    return server, thread
