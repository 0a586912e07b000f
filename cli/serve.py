"""`caratflow serve`: the search API on 127.0.0.1:7071, the same app Azure serves through function_app.py.

On SIGTERM or Ctrl-C the server first drains: /api/ready answers 503 for --drain-seconds so a load
balancer stops sending traffic, then in-flight requests finish and the process exits.
Request heads are limited in size and time here (api/request_head.py), as Azure's front end limits them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

import uvicorn

from shared import logs
from shared.config import Settings, get_settings
from shared.db.connect import connect, database_url
from shared.db.migrate import migrate

log = logging.getLogger("caratflow.serve")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="serve the search API (default 127.0.0.1:7071)")
    parser.add_argument("--host", help="interface (default API_HOST)")
    parser.add_argument("--port", type=int, help="port (default API_PORT)")
    parser.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    parser.add_argument("--drain-seconds", type=float, default=5.0, help="503 from /api/ready before stopping")
    parser.add_argument(
        "--no-local-host",
        dest="local_host",
        action="store_false",
        help="serve without running orchestrations here (operator routes that start runs then answer 503)",
    )
    parser.set_defaults(handler=_serve)


class DrainingServer(uvicorn.Server):
    """Marks the app as draining on the first exit signal and stops only after the drain period."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self._draining = True
        app: Any = self.config.app  # ours: the FastAPI app, whose state holds the API's
        app.state.api.draining = True
        log.info("draining", extra={"seconds": self.drain_seconds})
        threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame)).start()


def prepare(settings: Settings) -> str:
    """Find the database and bring its schema up to date; return its URL."""
    url = database_url(settings)
    with connect(settings, url, name="caratflow-api") as conn:
        migrate(conn)
    return url


def run(
    settings: Settings,
    *,
    host: str,
    port: int,
    drain_seconds: float,
    url: str | None = None,
    local_host: bool = True,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve the API; with `local_host`, also run orchestrations in this process (the operator routes
    start runs through its client, as Azure's do through the durable binding)."""
    from api.app import create_app
    from api.request_head import http_protocol

    url = url or prepare(settings)
    with contextlib.ExitStack() as stack:
        durable = None
        if local_host:
            from local_host.client import AsyncLocalClient
            from local_host.runtime import LocalRuntime

            runtime = stack.enter_context(LocalRuntime(settings))
            durable = AsyncLocalClient(runtime.client)
        app = create_app(settings, url=url, durable=durable)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=http_protocol(settings),  # type: ignore[arg-type]  # uvicorn calls it as it calls a class
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        DrainingServer(config, drain_seconds).run(sockets=sockets)


def _serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    host, port = args.host or settings.api_host, args.port or settings.api_port
    url = prepare(settings)
    log.info("serving", extra={"url": f"http://{host}:{port}", "docs": f"http://{host}:{port}/api/docs"})
    if args.workers > 1:
        options = {"drain_seconds": args.drain_seconds, "url": url, "local_host": args.local_host}
        logging_mode = (logging.DEBUG if args.verbose else logging.INFO, args.json_logs)
        return run_workers(settings, host, port, args.workers, options, logging_mode)
    run(settings, host=host, port=port, drain_seconds=args.drain_seconds, url=url, local_host=args.local_host)
    return 0


def run_workers(
    settings: Settings, host: str, port: int, workers: int, options: dict[str, Any], logging_mode: tuple[int, bool]
) -> int:
    """`workers` server processes, each with its own listening socket on the port (SO_REUSEPORT).

    With one shared socket (uvicorn's --workers) whichever process woke first accepted every pending
    connection, so 50 clients mostly landed on one worker (bench/README.md). Separate sockets let the
    kernel spread new connections across the processes. Each worker is a whole `run`: it drains on
    SIGTERM, which this parent forwards, and (with the local host) runs orchestrations too; hosts on
    one database share the work through its leases.
    """
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no threads or pools inherited
    children = [
        context.Process(target=_worker, args=(settings, host, port, options, logging_mode), name=f"api-worker-{n}")
        for n in range(workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, frame: object) -> None:
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    failed = [child.name for child in children if child.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        log.error("workers failed", extra={"workers": failed})
    return 1 if failed else 0


def _worker(settings: Settings, host: str, port: int, options: dict[str, Any], logging_mode: tuple[int, bool]) -> None:
    level, json_lines = logging_mode
    logs.configure(level, json_lines=json_lines)
    # A terminal's Ctrl-C reaches every process of the group; the parent forwards it as SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    run(settings, host=host, port=port, sockets=[listener], **options)
