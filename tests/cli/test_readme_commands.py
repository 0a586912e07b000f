"""Every command the README and docs/ show works as written.

The README's command table is run for real, one `--help` per sub-command, through the installed
`caratflow` entry point (without XDG_RUNTIME_DIR, so a runtime-directory warning would show); every
`caratflow ...` shown anywhere in README.md and docs/*.md is parsed with its arguments; and the
emulator serves where `caratflow emulator --port P --size N` says.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ports import free_port

from cli.main import _parser

PROJECT = Path(__file__).resolve().parents[2]
CARATFLOW = Path(sys.executable).with_name("caratflow")
DOCUMENTS = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]

# What a placeholder in the docs stands for, so the command can be parsed with real values.
PLACEHOLDERS = {"F": "nivoda-natural", "P": "7071", "N": "100", "T": "2026-11-22T10:00:00Z"}
SOME_ID = "00000000-0000-0000-0000-000000000001"  # a run id parses as a UUID; every other id too
NUMERIC_IDS = {"<id>": "1"}  # `notify retry <id>`: delivery ids are numbers


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "XDG_RUNTIME_DIR"}
    return {**env, "CARATFLOW_LOCAL_SETTINGS": str(PROJECT / "tests" / "no-local-settings.json")}


def _table_rows() -> list[str]:
    """The code cell of each row of the README's `## Commands` table, with `\\|` unescaped."""
    text = (PROJECT / "README.md").read_text()
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(caratflow [^`]+)` \|", section, flags=re.MULTILINE)
    assert len(rows) >= 10, "the README's command table was not found"
    return [row.replace("\\|", "|") for row in rows]


def _help_cases() -> list[tuple[list[str], list[str]]]:
    """(command words, flags the row shows) for every alternative of every row: `keys create|list`
    gives `keys create` and `keys list`."""
    cases: list[tuple[list[str], list[str]]] = []
    for row in _table_rows():
        words, flags = [], []
        for token in row.split()[1:]:
            token = token.strip("[]")
            if token.startswith("-"):
                flags.extend(token.split("|"))
            elif token.islower() and not flags:  # a sub-command (or a choice of them), before any flag
                words.append(token.split("|"))
        cases.extend((list(choice), flags) for choice in itertools.product(*words))
    return cases


@pytest.mark.parametrize(("words", "flags"), _help_cases(), ids=lambda case: " ".join(case))
def test_every_command_in_the_readme_table_answers_help(words: list[str], flags: list[str]) -> None:
    result = subprocess.run(
        [str(CARATFLOW), *words, "--help"], env=_environment(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: caratflow {words[0]}"), result.stdout
    for shown in [*words, *flags]:
        assert shown in result.stdout, f"`caratflow {' '.join(words)} --help` does not mention {shown}"
    assert result.stderr == "", result.stderr  # no warning, nothing a user would have to decode


def _shown_commands() -> list[tuple[str, str]]:
    """(where, command) for every command README.md and docs/*.md show: inline code and lines of code
    blocks that run `caratflow` (also as `.venv/bin/caratflow`) or `dev.py demo` (which runs
    `caratflow demo` with the same arguments)."""
    found = []
    command = re.compile(r"^(?:\.venv/bin/)?(caratflow [a-z].*)|^python3 dev\.py (demo.*)")
    for document in DOCUMENTS:
        in_block = False
        for number, line in enumerate(document.read_text().splitlines(), 1):
            if line.startswith("```"):
                in_block = not in_block
                continue
            for code in [line] if in_block else re.findall(r"`([^`]+)`", line):
                if match := command.match(code.strip()):
                    shown = match.group(1) or f"caratflow {match.group(2)}"
                    found.append((f"{document.name}:{number}", shown.split(" # ", 1)[0].strip()))
    return found


def _argvs(command: str) -> list[tuple[list[str], bool]]:
    """The argument lists a shown command stands for, every `a|b` expanded and placeholders filled in,
    each with whether it only names a command: `caratflow admin ...`, `caratflow keys create|list`
    and a `caratflow sync` in prose name commands whose arguments are shown elsewhere."""
    command = command.replace("\\|", "|")
    for placeholder in re.findall(r"<[^>]+>", command):
        command = command.replace(placeholder, NUMERIC_IDS.get(placeholder, SOME_ID))
    tokens = shlex.split(command.replace("[", " ").replace("]", " "))[1:]
    cut = "..." in tokens
    tokens = tokens[: tokens.index("...")] if cut else tokens
    names_only = cut or all(re.fullmatch(r"[a-z][a-z-]*(\|[a-z][a-z-]*)*", token) for token in tokens)
    choices = [
        [PLACEHOLDERS.get(token, SOME_ID if token == "RUN_ID" else token)] if "|" not in token else token.split("|")
        for token in tokens
    ]
    return [(list(argv), names_only) for argv in itertools.product(*choices)]


def test_the_documents_show_commands() -> None:
    shown = {command for _, command in _shown_commands()}
    assert 'caratflow admin cancel <run id> --reason "stalled"' in shown  # the scan reads docs/ ...
    assert "caratflow demo --size 100000" in shown  # ... and the README's `dev.py demo` lines


@pytest.mark.parametrize(("where", "command"), _shown_commands(), ids=lambda value: value)
def test_every_command_the_documents_show_parses(where: str, command: str, capsys) -> None:
    parser = _parser()
    for argv, names_only in _argvs(command):
        try:
            parser.parse_args(argv)
            continue
        except SystemExit:
            refused = capsys.readouterr().err
        assert names_only, f"{where}: `{command}` does not parse as {argv}: {refused}"
        # It names a command and shows none of its arguments: the command exists, with its own help.
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([*argv, "--help"])
        assert exited.value.code == 0, f"{where}: `{command}` names no command: {capsys.readouterr().err}"


def test_emulator_serves_on_the_port_and_size_given() -> None:
    port = free_port()
    emulator = subprocess.Popen(
        [str(CARATFLOW), "emulator", "--port", str(port), "--size", "300"],
        env={**_environment(), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert emulator.stderr is not None  # stderr=PIPE
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=2).json()
                break
            except httpx.ConnectError:
                assert emulator.poll() is None, emulator.stderr.read()
                assert time.monotonic() < deadline, "the emulator never answered"
                time.sleep(0.1)
    finally:
        emulator.send_signal(signal.SIGINT)
        out, err = emulator.communicate(timeout=30)
    assert health["stones"] == 300
    assert f"http://127.0.0.1:{port}/api/diamonds" in out
    assert emulator.returncode == 0, err
