#!/usr/bin/env python3
"""Static checks of the Bicep templates: every file parses, and checkov finds nothing unwaived.

    python infra/check.py [BICEP_DIR]     (default: infra/bicep)

1. Each .bicep file is parsed with pycep-parser. The Bicep CLI cannot be installed here (it downloads
   a native binary), and pycep is also what checkov parses with: a file it rejects is one checkov
   would silently skip, so the parse step runs first and stops the check.
2. checkov (--framework bicep) scans the folder. Without a Prisma key it reports no severities, so
   every failed check fails the run unless BICEP_DIR/checkov-waivers.yaml waives it with a reason;
   a waiver that matches no failure fails it too, so fixed findings leave the file.

checkov and pycep pin many packages the app also uses, so both live in their own virtualenv,
.tools/infra-venv, made with this interpreter's venv module and reused while the pins are unchanged.
This file needs only the standard library at the top level: it re-runs itself inside that
virtualenv for the two steps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "infra" / "bicep"
TOOL_VENV = ROOT / ".tools" / "infra-venv"
STAMP = TOOL_VENV / "caratflow-pins.txt"
WAIVER_FILE = "checkov-waivers.yaml"
# checkov 3.3.30 itself pins pycep-parser 0.5.1: the parse step uses the parser checkov scans with.
PINS = ("checkov==3.3.30", "pycep-parser==0.5.1")
INNER = "--in-tool-venv"


class CheckFailed(Exception):
    """A step found a problem; the message says which and where."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bicep_dir", nargs="?", type=Path, default=DEFAULT_DIR, help="folder of .bicep files")
    parser.add_argument(INNER, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    bicep_dir = args.bicep_dir.resolve()
    if not bicep_dir.is_dir():
        print(f"infra check: {bicep_dir} is not a folder", file=sys.stderr)
        return 2
    if args.in_tool_venv:
        return _run_checks(bicep_dir)
    try:
        python = ensure_tool_venv()
    except CheckFailed as exc:
        print(f"infra check: {exc}", file=sys.stderr)
        return 2
    return subprocess.run([str(python), __file__, INNER, str(bicep_dir)], check=False).returncode


# --- the tool virtualenv (standard library only)


def _venv_python() -> Path:
    return TOOL_VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _stamp_text() -> str:
    return "\n".join((*PINS, f"python {sys.version_info.major}.{sys.version_info.minor}")) + "\n"


@contextmanager
def _install_lock() -> Iterator[None]:
    """One installer at a time (CI and a test run may start together)."""
    TOOL_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(TOOL_VENV.parent / "infra-venv.lock", "w", encoding="utf-8") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; installs are rare enough
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _ready(python: Path) -> bool:
    return python.exists() and STAMP.exists() and STAMP.read_text(encoding="utf-8") == _stamp_text()


def ensure_tool_venv() -> Path:
    """Return the tool virtualenv's python, (re)creating it when it is missing or its pins changed."""
    python = _venv_python()
    if _ready(python):
        return python
    with _install_lock():
        if not _ready(python):
            _install(python)
    return python


def _install(python: Path) -> None:
    started = time.monotonic()
    print(f"infra check: installing {', '.join(PINS)} into {TOOL_VENV.relative_to(ROOT)}", flush=True)
    # Only ever this folder, which nothing but this script writes.
    shutil.rmtree(TOOL_VENV, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(TOOL_VENV)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *PINS],
        capture_output=True,
        text=True,
        check=False,
    )
    if install.returncode != 0:
        raise CheckFailed(f"pip could not install {', '.join(PINS)} (is PyPI reachable?):\n{install.stderr.strip()}")
    # Written last: an interrupted install is redone on the next run.
    STAMP.write_text(_stamp_text(), encoding="utf-8")
    print(f"infra check: tools ready in {time.monotonic() - started:.0f} s", flush=True)


# --- the checks (inside the tool virtualenv)


def _run_checks(bicep_dir: Path) -> int:
    try:
        files = parse_all(bicep_dir)
        print(f"pycep: {len(files)} .bicep files parsed")
        summary = run_checkov(bicep_dir, load_waivers(bicep_dir))
    except CheckFailed as exc:
        print(f"infra check FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"infra check passed: {len(files)} files parsed; {summary}")
    return 0


def parse_all(bicep_dir: Path) -> list[Path]:
    from lark.exceptions import LarkError
    from pycep import BicepParser

    files = sorted(bicep_dir.rglob("*.bicep"))
    if not files:
        raise CheckFailed(f"no .bicep files under {bicep_dir}")
    parser = BicepParser()
    problems = []
    for path in files:
        try:
            parser.parse(file_path=path)
        except (LarkError, ValueError) as exc:
            # The first line says where (line, column); the rest lists every token Lark expected.
            where = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            problems.append(f"  {path.relative_to(bicep_dir)}: {where}")
    if problems:
        raise CheckFailed("pycep could not parse:\n" + "\n".join(problems))
    return files


def load_waivers(bicep_dir: Path) -> list[dict[str, str]]:
    import yaml

    path = bicep_dir / WAIVER_FILE
    if not path.exists():
        return []
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    waivers = document.get("waivers") or []
    bad = [
        str(waiver)
        for waiver in waivers
        if not isinstance(waiver, dict)
        or not all(isinstance(waiver.get(key), str) and waiver[key].strip() for key in ("id", "resource", "file"))
        or len(str(waiver.get("reason", "")).split()) < 5
    ]
    if bad:
        raise CheckFailed(
            f"{path.name}: every waiver needs id, resource, file and a written reason:\n" + "\n".join(bad)
        )
    return waivers


def _checkov_results(bicep_dir: Path) -> dict:
    checkov = Path(sys.executable).parent / ("checkov.cmd" if os.name == "nt" else "checkov")
    # --skip-download: nothing is fetched from Prisma Cloud (no key, and only PyPI is reachable).
    scan = subprocess.run(
        [str(checkov), "-d", str(bicep_dir), "--framework", "bicep", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    try:
        report = json.loads(scan.stdout)
    except json.JSONDecodeError:
        raise CheckFailed(
            f"checkov gave no JSON report (exit {scan.returncode}):\n{scan.stderr.strip()[-3000:]}"
        ) from None
    reports = report if isinstance(report, list) else [report]
    bicep = [r for r in reports if r.get("check_type") == "bicep"]
    if not bicep:
        raise CheckFailed("checkov found no Bicep resources to check")
    if bicep[0]["summary"].get("parsing_errors"):
        raise CheckFailed(f"checkov could not parse {bicep[0]['summary']['parsing_errors']} files")
    return bicep[0]


def _key(item: dict) -> tuple[str, str, str]:
    return item["check_id"], item["resource"], item["file_path"].lstrip("/")


def run_checkov(bicep_dir: Path, waivers: list[dict[str, str]]) -> str:
    report = _checkov_results(bicep_dir)
    results = report["results"]
    passed, failed = results.get("passed_checks", []), results.get("failed_checks", [])
    waived_keys = {(w["id"], w["resource"], w["file"]) for w in waivers}
    failed_keys = {_key(item) for item in failed}
    unwaived = [item for item in failed if _key(item) not in waived_keys]
    stale = sorted(waived_keys - failed_keys)
    summary = f"checkov: {len(passed)} passed, {len(failed)} failed ({len(failed) - len(unwaived)} waived)"
    problems = []
    if unwaived:
        lines = [f"  {c['check_id']} {c['check_name']}\n    {c['resource']} in {_key(c)[2]}" for c in unwaived]
        advice = f"fix the Bicep, or waive with a reason in {WAIVER_FILE}"
        problems.append(f"{len(unwaived)} failed checks are not waived ({advice}):\n" + "\n".join(lines))
    if stale:
        lines = [f"  {check} {resource} in {file}" for check, resource, file in stale]
        problems.append(f"{len(stale)} waivers match no failed check (remove them):\n" + "\n".join(lines))
    if problems:
        raise CheckFailed(summary + "\n" + "\n".join(problems))
    return summary


if __name__ == "__main__":
    sys.exit(main())
