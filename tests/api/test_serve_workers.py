"""`caratflow serve --workers 2`: two processes, each with its own SO_REUSEPORT socket, so the kernel
spreads new connections over both; SIGTERM to the parent stops both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from ports import free_port

PROJECT = Path(__file__).resolve().parents[2]


def test_two_workers_both_take_connections_and_stop_together(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOCAL_SECRETS_PATH": str(tmp_path / "secrets.json"),
        "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
    }
    command = [str(Path(sys.executable).with_name("caratflow")), "--json-logs", "serve", "--port", str(port)]
    command += ["--workers", "2", "--no-local-host", "--drain-seconds", "0"]
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        server = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        ready = 0
        while ready < 60:  # a fresh connection per request: each is one the kernel places
            assert time.monotonic() < deadline, stderr_path.read_text()[-2000:]
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2) as http:
                    ready += http.get("/api/health").status_code == 200
            except httpx.ConnectError:  # not listening yet
                time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(30)
    assert code == 0
    records = [json.loads(line) for line in stderr_path.read_text().splitlines() if line.startswith("{")]
    answered_by = {r["process"] for r in records if r.get("message") == "request" and r.get("path") == "/api/health"}
    assert len(answered_by) == 2
    assert server.pid not in answered_by  # the parent only supervises
