"""Where the `caratflow` command writes: the person at the terminal, and the log.

Progress and summaries are for the person watching; log records are for finding out later what
happened, so by default they go to a file, `.caratflow/logs/caratflow-<date>.log` in the project
(`CARATFLOW_LOG_DIR` chooses the folder), and only warnings and errors also reach the terminal.
Commands that are a service (`serve`, `host`, `emulator`) log on stderr: their log is their output.
`-v` puts every record, debug included, on stderr; `--json-logs` writes one JSON object per line on
stderr, for machines.

On a terminal, records go through rich's log handler on the same console as the live progress, so a
record is printed above the progress bars instead of through them. Off a terminal rich writes plain
text, without colours or cursor movement.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.logging import RichHandler

from shared import logs
from shared.config import PROJECT_ROOT

LOG_DIR_ENV = "CARATFLOW_LOG_DIR"
# Commands whose log is what a person running them wants to see.
SERVICES = frozenset({"serve", "host", "emulator"})

# stdout, looked up when written to (a test's capture swaps sys.stdout); shared by progress and logs.
console = Console()


def console_for(out: TextIO | None) -> Console:
    """The console writing to `out`; None is the terminal's (stdout), the one log records share."""
    return console if out is None or out is sys.stdout else Console(file=out)


def log_path(now: datetime | None = None) -> Path:
    """Today's log file: one per day, appended to by every command (a line is one write)."""
    folder = Path(os.environ.get(LOG_DIR_ENV) or PROJECT_ROOT / ".caratflow" / "logs")
    return folder / f"caratflow-{(now or datetime.now(UTC)):%Y-%m-%d}.log"


def configure_logging(command: str, *, verbose: bool, json_lines: bool) -> Path | None:
    """Send the log where the rules above say; return the file it goes to, if any."""
    logs.configure(logging.DEBUG if verbose else logging.INFO, json_lines=json_lines)
    if json_lines:
        return None  # logs.configure wrote them to stderr, one JSON object per line
    root = logging.getLogger()
    on_screen = _terminal_handler() if console.is_terminal and sys.stderr.isatty() else root.handlers[0]
    if verbose or command in SERVICES:
        root.handlers[:] = [on_screen]
        return None
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        # A read-only install: the log stays on the terminal, and the warning says how to move it.
        root.handlers[:] = [on_screen]
        logging.getLogger(__name__).warning(
            f"cannot write the log to its folder; logging here instead ({LOG_DIR_ENV} chooses the folder)",
            extra={"folder": str(path.parent), "error": exc.strerror},
        )
        return None
    to_file.setFormatter(_TimestampedFormatter())
    on_screen.setLevel(logging.WARNING)
    root.handlers[:] = [to_file, on_screen]
    return path


def _terminal_handler() -> logging.Handler:
    handler = RichHandler(console=console, show_path=False, markup=False, rich_tracebacks=False)
    handler.setFormatter(_FieldsFormatter())
    return handler


class _FieldsFormatter(logging.Formatter):
    """The logger, the message and its fields; rich's handler adds the time and the level."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{key}={value}" for key, value in logs.fields(record).items() if key not in _TRACE_IDS)
        line = f"{record.name}: {record.getMessage()}" + (f" {extras}" if extras else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


_TRACE_IDS = ("trace_id", "span_id")


class _TimestampedFormatter(logs.KeyValueFormatter):
    """A log file is read later: each line starts with when it was written (UTC)."""

    def format(self, record: logging.LogRecord) -> str:
        written = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        return f"{written} {super().format(record)}"
