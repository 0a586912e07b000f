"""Where the command's log goes: a file by default (warnings also on the terminal), stderr for services,
with -v and with --json-logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli import terminal

log = logging.getLogger("caratflow.test")


@pytest.fixture(autouse=True)
def restored_logging(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv(terminal.LOG_DIR_ENV, str(tmp_path / "logs"))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


def test_a_command_logs_to_a_dated_file_and_only_warnings_to_the_terminal(capsys, tmp_path: Path) -> None:
    path = terminal.configure_logging("sync", verbose=False, json_lines=False)
    assert path == terminal.log_path()
    assert path.parent == tmp_path / "logs"
    log.info("partition fetched", extra={"partition_no": 3})
    log.warning("feed slow", extra={"seconds": 9})
    written = path.read_text()
    assert "info    caratflow.test: partition fetched partition_no=3" in written
    assert written.startswith("20")  # each line starts with its UTC time
    assert "feed slow" in written
    err = capsys.readouterr().err
    assert "partition fetched" not in err
    assert "feed slow seconds=9" in err


@pytest.mark.parametrize("command", sorted(terminal.SERVICES))
def test_a_service_logs_to_stderr(command: str, capsys) -> None:
    assert terminal.configure_logging(command, verbose=False, json_lines=False) is None
    log.info("serving")
    assert "serving" in capsys.readouterr().err


def test_verbose_logs_everything_to_stderr(capsys) -> None:
    assert terminal.configure_logging("sync", verbose=True, json_lines=False) is None
    log.debug("detail")
    assert "detail" in capsys.readouterr().err


def test_json_logs_go_to_stderr_one_object_per_line(capsys) -> None:
    assert terminal.configure_logging("demo", verbose=False, json_lines=True) is None
    log.info("request", extra={"status": 200})
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["status"] == 200


def test_an_unwritable_log_folder_keeps_the_log_on_the_terminal_and_says_how_to_move_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(terminal.LOG_DIR_ENV, str(tmp_path / "a-file" / "logs"))
    assert terminal.configure_logging("sync", verbose=False, json_lines=False) is None
    log.info("partition fetched")
    err = capsys.readouterr().err
    assert "cannot write the log to its folder" in err
    assert terminal.LOG_DIR_ENV in err
    assert "partition fetched" in err
