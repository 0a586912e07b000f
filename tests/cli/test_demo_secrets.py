"""The log output of a whole demo run (two syncs, a key issued, the API serving signed and refused
requests) holds none of the secrets the run used: the feed password, the API key's secret, the
signatures made with it. The printed example request does carry the key (it is meant to be pasted),
which is why the scan reads the log stream (stderr) and never stdout."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from ports import free_port

from caratflow_client import CaratflowClient
from emulator.config import EmulatorConfig

PROJECT = Path(__file__).resolve().parents[2]


def printed_value(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern} not in: {text}"
    return match.group(1)


def test_a_demo_run_logs_no_secret(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "API_PORT": str(port),
        "LOCAL_SECRETS_PATH": str(tmp_path / "secrets.json"),
        "SCAN_STORE_DIR": str(tmp_path / "scans"),
        "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
        "CARATFLOW_LOG_DIR": str(tmp_path / "logs"),  # not the project's log
    }
    command = [str(Path(sys.executable).with_name("caratflow")), "--json-logs", "demo", "--size", "1500"]
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        demo = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert demo.stdout is not None  # stdout=PIPE
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while not any("Ctrl-C stops" in line for line in printed):
            line = demo.stdout.readline()
            assert line or demo.poll() is None, f"demo ended early: {''.join(printed)}"
            printed.append(line)
            assert time.monotonic() < deadline, "the demo did not reach the API"
        key_id = printed_value(r"CARATFLOW_KEY_ID=(\S+)", "".join(printed))
        secret = printed_value(r"CARATFLOW_API_SECRET=(\S+)", "".join(printed))
        base = f"http://127.0.0.1:{port}"
        while True:  # the example is printed just before the server binds its port
            try:
                if httpx.get(f"{base}/api/ready", timeout=2).status_code == 200:
                    break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the API never answered"
                time.sleep(0.1)
        with CaratflowClient(base, key_id, secret) as client:
            found = client.search(shape=["ROUND"], limit=3)
            signature = client.http.get("/api/v1/diamonds", params={"limit": 1}).request.headers["authorization"]
        wrong = CaratflowClient(base, key_id, secret[::-1])
        with wrong:
            refused = wrong.http.get("/api/v1/diamonds")
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
    assert found["data"]
    assert refused.status_code == 401
    logs = stderr_path.read_text()
    records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert len(records) > 20  # the scan read a real log, not an empty file
    assert any(r.get("message") == "authentication failed" for r in records)  # the refusal was logged...
    assert any(r.get("message") == "request" for r in records)  # ...and so were the requests
    feed_password = EmulatorConfig().password.get_secret_value()
    for leaked, what in (
        (feed_password, "feed password"),
        (secret, "API key secret"),
        (secret[::-1], "the wrong secret a caller tried"),
        (signature.rsplit("signature=", 1)[1], "a request signature"),
    ):
        assert leaked not in logs, f"{what} appears in the log output"
