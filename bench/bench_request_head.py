"""Benchmark of the request-head limits: `caratflow serve` under four connections each sending a 64 MiB header.

    .venv/bin/python bench/bench_request_head.py [--baseline] [--workers N ...] [--seconds S] [--write]

`caratflow serve` runs as a subprocess on a throwaway embedded PostgreSQL (or --database URL). The
script measures the server's RSS (VmRSS of its processes, workers included) before the attack, its
peak during it and after it; what the attackers got, and how many bytes each could send before the
server answered (the kernel's socket buffers included); and the latency of a normal client's
GET /api/health every 50 ms meanwhile. Each attacker sends its header again on a new connection until
--seconds have passed (at least once). --baseline also runs the server with uvicorn's own protocol
(no head limits), as it was before issue 10, through a launcher that swaps the protocol before
`caratflow serve` runs (one process only: --workers children would import the real one).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

import httpx  # noqa: E402
import psutil  # noqa: E402
from common import machine, serve_process, throwaway_database, write_section  # noqa: E402

ATTACKERS = 4
HEADER_BYTES = 64 << 20
HEALTH_EVERY = 0.05
# `caratflow serve` with uvicorn's own protocol in place of the limited one (single process only).
BASELINE_LAUNCHER = (
    "import sys; import api.request_head as head; "
    "from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol; "
    "head.http_protocol = lambda settings: HttpToolsProtocol; "
    "from cli.main import main; sys.exit(main())"
)


@contextmanager
def served(database: str, folder: Path, *, workers: int, limited: bool) -> Iterator[tuple[str, int]]:
    """`caratflow serve` on a free port, settings from the environment; yields its URL and pid."""
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "SECRET_STORE": "local",
        "LOCAL_SECRETS_PATH": str(folder / "secrets.json"),
        "CARATFLOW_LOCAL_SETTINGS": str(folder / "no-local-settings.json"),
    }
    launcher = None if limited else [sys.executable, "-c", BASELINE_LAUNCHER]
    log_path = folder / f"serve-{'limited' if limited else 'baseline'}-{workers}.log"
    options = ("--workers", str(workers), "--drain-seconds", "0", "--no-local-host")
    with serve_process(env, log_path, *options, launcher=launcher) as (base, server):
        yield base, server.pid


def rss_mb(pid: int) -> float:
    """VmRSS of the process and its children, in MB."""
    pids = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    total_kb = 0
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except FileNotFoundError:
            continue  # a worker that has just exited
        total_kb += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total_kb * 1024 / 1e6


def attack_once(port: int) -> tuple[str, int]:
    """One connection sending a 64 MiB header: the status it got (or how it ended) and the bytes sent."""
    head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: "
    filler = memoryview(b"a" * 65536)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sent = 0
        try:
            sock.sendall(head)
            while sent < HEADER_BYTES:
                sent += sock.send(filler)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError) as exc:
            # Cut off by the server; the answer it wrote first is still there to read.
            cut_off: str | None = type(exc).__name__
        else:
            cut_off = None
        try:
            answer = sock.recv(64)
        except ConnectionResetError:
            return f"reset before an answer ({cut_off})", sent
    return (answer.split(b" ", 2)[1].decode() if answer else f"closed ({cut_off})"), sent


def attack(base: str, pid: int, seconds: float) -> dict[str, Any]:
    port = int(base.rsplit(":", 1)[1])
    with httpx.Client(base_url=base, timeout=30) as http:
        for _ in range(20):  # warm: the first requests import and allocate
            http.get("/api/health").raise_for_status()
        time.sleep(0.5)
        before = rss_mb(pid)
        outcomes: list[tuple[str, int]] = []
        latencies: list[float] = []
        peak = before
        done = threading.Event()
        deadline = time.monotonic() + seconds

        def attacker() -> None:
            while True:
                outcomes.append(attack_once(port))
                if time.monotonic() >= deadline:
                    return

        def sampler() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(pid))
                time.sleep(0.02)

        threads = [threading.Thread(target=attacker) for _ in range(ATTACKERS)]
        watcher = threading.Thread(target=sampler)
        started = time.monotonic()
        for thread in [watcher, *threads]:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            sent = time.monotonic()
            http.get("/api/health").raise_for_status()
            latencies.append(time.monotonic() - sent)
            time.sleep(HEALTH_EVERY)
        elapsed = time.monotonic() - started
        done.set()
        watcher.join()
        time.sleep(0.5)
        after = rss_mb(pid)
    return {
        "before": before,
        "peak": peak,
        "after": after,
        "elapsed": elapsed,
        "outcomes": Counter(status for status, _ in outcomes),
        "sent_mib": statistics.median(sent for _, sent in outcomes) / 2**20,
        "latencies_ms": sorted(1000 * latency for latency in latencies),
    }


def row(name: str, workers: int, result: dict[str, Any]) -> str:
    latencies = result["latencies_ms"]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    outcomes = ", ".join(f"{count} x {status}" for status, count in sorted(result["outcomes"].items()))
    return (
        f"| {name} | {workers} | {result['before']:.0f} | {result['peak']:.0f} | {result['after']:.0f} "
        f"| {outcomes} | {result['sent_mib']:.1f} | {result['elapsed']:.1f} | {len(latencies)} "
        f"| {statistics.median(latencies):.1f} | {p99:.1f} | {latencies[-1]:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true", help="also run without the head limits (1 process)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="server processes, one run each")
    parser.add_argument("--seconds", type=float, default=5, help="attack at least this long")
    parser.add_argument("--database", help="a migrated database URL (default: a throwaway embedded one)")
    parser.add_argument("--write", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()

    runs = [("no limits (uvicorn's protocol)", False, 1)] if args.baseline else []
    runs += [("head limits", True, workers) for workers in args.workers]
    lines = [
        "| server | workers | RSS before MB | peak RSS MB | RSS after MB | attack connections answered "
        "| MiB sent per connection (median) | attack s | health requests | health p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    database = nullcontext(args.database) if args.database else throwaway_database()
    with database as url, tempfile.TemporaryDirectory(prefix="caratflow-bench-head-") as folder:
        for name, limited, workers in runs:
            with served(url, Path(folder), workers=workers, limited=limited) as (base, pid):
                lines.append(row(name, workers, attack(base, pid, args.seconds)))
            print(f"... {name} done", file=sys.stderr, flush=True)
    lines += [
        "",
        f"Machine: {machine()}",
        f"Attack: {ATTACKERS} connections at once, each sending `GET /api/health` with a 64 MiB `X-Pad` "
        f"header, and again on a new connection until {args.seconds:g} s have passed; meanwhile one client "
        f"sends GET /api/health every {HEALTH_EVERY * 1000:.0f} ms on a kept-alive connection. "
        "MiB sent: what the attacker's socket accepted, kernel buffers included. "
        "RSS: VmRSS of the server's processes (with workers, the parent's too). "
        "Limits at their defaults: 8192-byte request line, 16 KiB of headers, 100 fields.",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("bench_request_head", "\n".join(lines))


if __name__ == "__main__":
    main()
