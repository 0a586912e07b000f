"""What the benchmarks share: the machine line, progress lines, the emulator in its own process, a
throwaway database, `caratflow serve` in its own process, and writing a result table into bench/README.md."""

from __future__ import annotations

import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

PROJECT = Path(__file__).resolve().parent.parent
README = PROJECT / "bench" / "README.md"


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1) if found else cpu
    return (
        f"{cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def progress(message: str) -> None:
    """A progress line on stderr, so that stdout carries only the result table."""
    print(f"... {message}", file=sys.stderr, flush=True)


@contextmanager
def emulator_process(size: int, seed: int = 7, *extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m emulator` in its own process (as the real feed is remote): yields its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--size", str(size), "--seed", str(seed), *extra],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        banner = "".join(server.stdout.readline() for _ in range(2))
        match = re.search(r"http://127\.0\.0\.1:(\d+)/api/diamonds", banner)
        if match is None:
            raise RuntimeError(f"the emulator did not start: {banner}{server.stderr.read() if server.stderr else ''}")
        yield match.group(0), server
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh embedded PostgreSQL cluster, migrated, stopped and removed afterwards."""
    import psycopg

    from shared.db import embedded
    from shared.db.migrate import migrate

    with tempfile.TemporaryDirectory(prefix="caratflow-bench-") as folder:
        data = Path(folder) / "pg"
        url = embedded.start(data)
        try:
            with psycopg.connect(url) as conn:
                migrate(conn)
            yield url
        finally:
            embedded.stop(data)


def write_section(name: str, text: str) -> None:
    """Replace the README section between `<!-- name:start -->` and `<!-- name:end -->`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = README.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"{README} has no {start} ... {end} section")
    head, _, rest = content.partition(start)
    _, _, tail = rest.partition(end)
    README.write_text(f"{head}{start}\n{text.strip()}\n{end}{tail}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve_process(
    env: dict[str, str], log_path: Path, *options: str, launcher: list[str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`caratflow serve` on a free port (or `launcher serve`), until ready; yields its URL and process,
    and stops it with SIGTERM as a deployment would."""
    port = free_port()
    command = [*(launcher or [str(Path(sys.executable).with_name("caratflow"))]), "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), *options]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server, log_path)
        yield base, server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def serve_database(
    database: str,
    folder: Path,
    workers: int,
    log_name: str,
    env: dict[str, str] | None = None,
    launcher: list[str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`caratflow serve` on `database` as a deployment runs it, settings from the environment: a local
    secret store in `folder`, no drain wait, no local host, plus `env`; its log is `folder / log_name`."""
    settings = {
        **os.environ,
        "DATABASE_URL": database,
        "SECRET_STORE": "local",
        "LOCAL_SECRETS_PATH": str(folder / "secrets.json"),
        # No local.settings.json from a developer's checkout: defaults plus the lines above.
        "CARATFLOW_LOCAL_SETTINGS": str(folder / "no-local-settings.json"),
        **(env or {}),
    }
    options = ("--workers", str(workers), "--drain-seconds", "0", "--no-local-host")
    with serve_process(settings, folder / log_name, *options, launcher=launcher) as served:
        yield served


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/ready", timeout=2).status_code == 200
    except httpx.HTTPError:  # not listening yet
        return False


def _wait_ready(base: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"caratflow serve exited ({server.returncode}):\n{log_path.read_text()[-3000:]}")
        if _ready(base):
            return
        time.sleep(0.2)
    raise SystemExit(f"caratflow serve not ready after 60 s:\n{log_path.read_text()[-3000:]}")
