#!/usr/bin/env python3
"""Bootstrap and run caratflow from a fresh clone with nothing but Python 3.11+.

    python3 dev.py demo     # the main job on embedded defaults
    python3 dev.py test     # every test

Creates .venv and installs the project with its dev extras (again only when pyproject.toml
changes), installs Azurite (the blob emulator) into .tools when npm is available, then runs the
command inside the virtualenv. Extra arguments go to `caratflow demo` or pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".caratflow-installed"
TOOLS = ROOT / ".tools"
AZURITE = "azurite@3.35.0"


def _run(*command: str | Path) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True, cwd=ROOT)


def ensure_python_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - a fresh clone may run any python3
        sys.exit(f"caratflow needs Python >= 3.11, this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def ensure_azurite() -> None:
    """Azurite lets the blob-store tests run against a real Blob API; it needs node and npm."""
    if (TOOLS / "node_modules" / ".bin" / "azurite-blob").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        print("note: npm not found; blob-store tests against Azurite will be skipped", file=sys.stderr)
        return
    TOOLS.mkdir(exist_ok=True)
    _run(npm, "install", "--prefix", TOOLS, "--no-audit", "--no-fund", "--loglevel=error", AZURITE)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test"}:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_python_env()
    if command == "test":
        ensure_azurite()
        return subprocess.run([str(BIN / "pytest"), *rest], cwd=ROOT).returncode
    return subprocess.run([str(BIN / "caratflow"), "demo", *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
