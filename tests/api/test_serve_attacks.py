"""Attacks on the API replayed against the `caratflow serve` command itself (a process of its own,
settings from the environment, the embedded-free test PostgreSQL): a stranger failing with a victim's
key id, NUL in a filter, oversized request heads, a signature moved to another path, two Authorization
headers, a trailing-slash redirect to the Host header. The other tests serve the same app and protocol
in-process; this one proves the command wires them the same way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ports import free_port

from caratflow_client.signing import sign_request
from shared.access import keys
from shared.secrets import open_secret_store

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(database_url: str, settings, pool, tmp_path: Path) -> Iterator[tuple[str, keys.IssuedSecret]]:
    secrets_path = tmp_path / "secrets.json"
    key = keys.create_key(
        pool, open_secret_store(settings.model_copy(update={"local_secrets_path": secrets_path})), "shop", ["search"]
    )
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOCAL_SECRETS_PATH": str(secrets_path),
        "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
        "API_TRUST_FORWARDED_FOR": "true",
        "API_AUTH_FAILURE_BURST": "3",
    }
    command = [str(Path(sys.executable).with_name("caratflow")), "serve", "--port", str(port)]
    command += ["--no-local-host", "--drain-seconds", "0"]
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log_path.read_text()[-2000:]
            assert time.monotonic() < deadline, log_path.read_text()[-2000:]
            try:
                if httpx.get(f"{base}/api/ready", timeout=2).status_code == 200:
                    break
            except httpx.ConnectError:  # not listening yet
                time.sleep(0.1)
        yield base, key
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def _signed(key, path: str = "/api/v1/diamonds", query: str = "limit=1", secret: str | None = None) -> str:
    return sign_request(key_id=key.key_id, secret=secret or key.secret, method="GET", path=path, query=query).header()


def _raw_status(base: str, head: bytes) -> int:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        return int(sock.recv(64).split(b" ", 2)[1])


def test_the_command_holds_against_the_attacks(served) -> None:
    base, key = served
    with httpx.Client(base_url=base, timeout=10) as http:
        # a stranger failing with the victim's key id does not lock the victim out
        for _ in range(10):
            http.get(
                "/api/v1/diamonds?limit=1",
                headers={"Authorization": _signed(key, secret="wrong"), "X-Forwarded-For": "203.0.113.7"},
            )
        victim = http.get(
            "/api/v1/diamonds?limit=1", headers={"Authorization": _signed(key), "X-Forwarded-For": "198.51.100.9"}
        )
        assert victim.status_code == 200, victim.text
        # NUL in a text filter is a 400 problem, not a 500
        nul = http.get(
            "/api/v1/diamonds?fancy_color=%00", headers={"Authorization": _signed(key, query="fancy_color=%00")}
        )
        assert (nul.status_code, nul.headers["content-type"]) == (400, "application/problem+json")
        # a signature for one path does not verify another
        moved = http.get("/api/v1/diamonds/a%0Ab", headers={"Authorization": _signed(key, "/api/v1/diamonds/ab", "")})
        assert moved.status_code == 401
        # two Authorization headers
        twice = http.get(
            "/api/v1/diamonds?limit=1", headers=[("Authorization", _signed(key)), ("Authorization", _signed(key))]
        )
        assert twice.status_code == 400
        # no redirect to the Host header
        slash = http.get("/api/v1/diamonds/", headers={"Host": "evil.example"}, follow_redirects=False)
        assert slash.status_code == 404
    # request line and header limits
    assert _raw_status(base, b"GET /api/health?" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n") == 414
    assert _raw_status(base, b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 40_000 + b"\r\n\r\n") == 431
