"""Where bench_api's server spends its CPU: py-spy samples of `caratflow serve` under load, by group."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from api_load import Setup, replay, signed_requests

# Frames are "function (module/file.py:line)", paths as py-spy shortens them. A sample belongs to the
# first WORK group found anywhere in its stack (psycopg called from the auth code is psycopg's time);
# otherwise to the LAYER of its innermost recognised frame (every stack passes through uvicorn and
# asyncio, so only the innermost says which layer was running).
# (group, frame marks)
Groups = tuple[tuple[str, tuple[str, ...]], ...]
WORK_GROUPS: Groups = (
    ("secret lookup via a worker thread (anyio to_thread, both sides)", ("(anyio/to_thread", "(threading.py")),
    ("access log line (logging)", ("(logging/", "logs.py:")),
    ("psycopg: gate / search statements, rows, pool", ("(psycopg/", "(psycopg_pool/")),
    ("signature: canonical request, HMAC", ("signing.py:", "verify.py:", "(hmac.py")),
    ("JSON encoding of the page", ("(api/encoding.py",)),
)
LAYER_GROUPS: Groups = (
    ("query string to DiamondSearch (FastAPI params, pydantic)", ("(pydantic", "(fastapi/dependencies/")),
    ("HTTP: uvicorn, httptools, socket reads and writes", ("(uvicorn/", "(httptools", "selector_events.py:")),
    ("Starlette / FastAPI routing and middleware", ("(starlette/", "(fastapi/")),
    ("caratflow api/ and shared/ code", ("(api/", "(catalogue/", "(access/", "(shared/")),
    ("asyncio event loop", ("(asyncio/", "(selectors.py")),
)
PROFILE_GROUPS = WORK_GROUPS + LAYER_GROUPS


def profile_server(setup: Setup, base: str, server: psutil.Process, etag: str | None, seconds: int = 10) -> Any:
    """Share of the server's CPU samples by group while it serves the load (None: py-spy not installed)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        return None
    output = setup.folder / "profile.txt"
    items = signed_requests(setup.probes, setup.key, seconds * 6000, 9, etag)
    recorder = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.pid),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            "200",
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)  # py-spy attaches; the load then covers its whole window
    replay(base, items, seconds + 1, setup.connections, setup.folder)
    recorder.wait(60)
    return grouped_samples(output.read_text())


def grouped_samples(raw: str) -> dict[str, float]:
    """py-spy's raw output ("frame;frame;... count" per line) as shares of the samples by group."""
    groups: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            groups[sample_group(stack.split(";"))] += int(count)
    total = sum(groups.values()) or 1
    return {name: n / total for name, n in groups.most_common()}


def sample_group(frames: list[str]) -> str:
    for name, marks in WORK_GROUPS:
        if any(mark in frame for frame in frames for mark in marks):
            return name
    for frame in reversed(frames):
        for name, marks in LAYER_GROUPS:
            if any(mark in frame for mark in marks):
                return name
    return "other"
