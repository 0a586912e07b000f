"""Serving the emulator with uvicorn on 127.0.0.1: in a background thread (tests, local runs) or in
the foreground (`python -m emulator`)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from emulator.app import GRAPHQL_PATH, EmulatorApp
from emulator.auth import TokenStore
from emulator.config import EmulatorConfig
from emulator.faults import FaultInjector
from emulator.inventory import Inventory
from emulator.state import EmulatorState
from emulator.stats import Stats

HOST = "127.0.0.1"  # the emulator is a local test double: never bind a public interface


def bind(port: int) -> socket.socket:
    """A listening-ready socket on 127.0.0.1 (port 0: a free one)."""
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it keep-alive responses stall ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    return sock


def _uvicorn(app: EmulatorApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        # A request hanging in a timeout fault must not hold shutdown for its full hang.
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


def serve(state: EmulatorState, sock: socket.socket) -> None:
    """Serve on `sock` in the foreground until interrupted (uvicorn handles Ctrl-C)."""
    try:
        _uvicorn(EmulatorApp(state)).run(sockets=[sock])
    finally:
        sock.close()


class RunningEmulator:
    """The emulator served from a background thread; a context manager.

    `RunningEmulator(size=2_000, seed=3, short_page_rate=0.3)` takes any `EmulatorConfig` field as a
    keyword; without a `port` it picks a free one. `url` is the GraphQL endpoint.
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, inventory: Inventory | None = None, **overrides: Any
    ) -> None:
        if config is None:
            config = EmulatorConfig(**{"port": 0, **overrides})
        elif overrides:
            config = EmulatorConfig(**{**config.model_dump(), **overrides})
        self.state = EmulatorState.build(config, inventory)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port = config.port

    # -- what tests use ----------------------------------------------------------------------
    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    @property
    def inventory(self) -> Inventory:
        return self.state.inventory

    @property
    def faults(self) -> FaultInjector:
        return self.state.faults

    @property
    def tokens(self) -> TokenStore:
        return self.state.tokens

    @property
    def stats(self) -> Stats:
        return self.state.stats

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}{GRAPHQL_PATH}"

    def issue_token(self) -> str:
        """A valid token without an HTTP round trip."""
        token = self.tokens.login(self.config.username, self.config.password.get_secret_value())
        assert token is not None, "the configured credentials must log in"
        return token

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> RunningEmulator:
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._sock = bind(self.port)
        self.port = self._sock.getsockname()[1]
        self._server = _uvicorn(EmulatorApp(self.state))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"emulator:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"the emulator on {self.base_url} did not stop within {timeout} s")
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> RunningEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
