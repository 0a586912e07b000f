"""`python -m emulator`: flags mirror the config, and it serves until interrupted."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from emulator import EmulatorConfig
from emulator.cli import build_parser, main

PROJECT = Path(__file__).resolve().parents[2]


def test_every_config_field_is_a_flag():
    parser = build_parser()
    flags = {action.dest for action in parser._actions}
    assert set(EmulatorConfig.model_fields) <= flags
    args = parser.parse_args(["--short-page-rate", "0.3", "--faults-on-auth", "--size", "10"])
    assert EmulatorConfig(**{k: v for k, v in vars(args).items() if v is not None}).short_page_rate == 0.3


def test_invalid_values_exit_with_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--rate-429", "1.5"])
    assert exited.value.code == 2
    assert "rate_429" in capsys.readouterr().err


def test_serves_until_interrupted():
    env = {**os.environ, "EMULATOR_SIZE": "1000", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--seed", "3"],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None  # stdout=PIPE
        banner = "".join(process.stdout.readline() for _ in range(2))
        match = re.search(r"http://127\.0\.0\.1:(\d+)/api/diamonds", banner)
        assert match, banner
        assert "1,000 stones" in banner
        health_url = f"http://127.0.0.1:{match.group(1)}/_emulator/health"
        for _ in range(100):
            try:
                health = httpx.get(health_url).json()
                break
            except httpx.ConnectError:
                continue
        assert health["stones"] == 1000
        assert health["seed"] == 3
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
