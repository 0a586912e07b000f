"""The watcher and the run summary, on a terminal and off one, with a scripted instance and partitions
(the run itself is tested end to end in test_commands.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from cli import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@dataclass
class Status:
    runtime_status: str
    custom_status: dict[str, Any]
    is_finished: bool = False


def partition(number: int, status: str, fetched: int, expected: int = 100, attempts: int = 1) -> dict[str, Any]:
    return {
        "partition_no": number,
        "dpc_from": number * 1000,
        "dpc_to": None if number == 2 else (number + 1) * 1000,
        "expected_count": expected,
        "rows_fetched": fetched,
        "status": status,
        "attempts": attempts,
    }


class Scripted:
    """A client whose answers are a script: a list of partition lists, or an exception, per poll."""

    def __init__(self, script: list[list[dict[str, Any]] | Exception]) -> None:
        self.script = script
        self.polls = 0

    def get_status(self, instance_id: str) -> Status:
        step = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        if isinstance(step, Exception):
            raise step
        self.current = step
        last = self.polls >= len(self.script)
        return Status(
            "Completed" if last else "Running",
            {"run_id": "00000000-0000-0000-0000-000000000001", "feed": "nivoda-natural", "stage": "fetching"},
            is_finished=last,
        )


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch):
    def make(script):
        client = Scripted(script)
        monkeypatch.setattr(progress, "_partitions", lambda c, run_id: client.current)
        return client

    return make


def test_off_a_terminal_one_plain_line_per_finished_partition(scripted) -> None:
    client = scripted(
        [
            [partition(0, "fetching", 10), partition(1, "pending", 0), partition(2, "pending", 0)],
            [partition(0, "fetched", 100), partition(1, "fetching", 50), partition(2, "pending", 0)],
            [partition(0, "fetched", 100), partition(1, "dead_lettered", 50, attempts=4), partition(2, "fetched", 90)],
        ]
    )
    out = io.StringIO()
    progress.watch(client, "sync-nivoda-natural", out=out, interval=0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["#0", "$", "0-1,000", "/ct", "100/100", "fetched"]
    assert lines[1].endswith("dead_lettered")
    assert "open" in lines[2]
    assert "\x1b[" not in out.getvalue()  # no colour, no cursor movement


def test_the_database_going_away_is_said_once_each_way(scripted) -> None:
    lost = psycopg.OperationalError("connection refused\nmore detail")
    client = scripted([[partition(0, "fetching", 10)], lost, lost, lost, [partition(0, "fetched", 100)]])
    out = io.StringIO()
    progress.watch(client, "sync-nivoda-natural", out=out, interval=0)
    lines = out.getvalue().splitlines()
    assert lines[0] == "database unavailable (connection refused); the run waits for it"
    assert lines[1].startswith("database back after ")
    assert lines[2].endswith("fetched")


def test_on_a_terminal_bars_and_the_partitions_that_gave_up(scripted) -> None:
    client = scripted(
        [
            [partition(0, "fetching", 10), partition(1, "fetching", 20, attempts=2)],
            [partition(0, "fetched", 100), partition(1, "dead_lettered", 20, attempts=4)],
        ]
    )
    out = Terminal()
    progress.watch(client, "sync-nivoda-natural", out=out, interval=0)
    shown = out.getvalue()
    assert "\x1b[" in shown  # drawn, not printed
    assert "nivoda-natural: fetching" in shown
    assert "120 stones, partitions 1/2 fetched, 1 failed" in shown
    assert "attempt 2" in shown  # the partition's bar while it was being retried
    assert shown.count("dead_lettered") == 1  # printed above the bars once, when it gave up


def test_summary_names_the_run_and_counts_in_a_table() -> None:
    summary = {
        "run_id": "00000000-0000-0000-0000-000000000001",
        "feed": "nivoda-labgrown",
        "kind": "incremental",
        "status": "partially_succeeded",
        "partitions": 20,
        "failed_partitions": 1,
        "pages": 400,
        "fetched": 19_500,
        "new": 120,
        "changed": 30,
        "unchanged": 19_350,
        "rejected": 4,
        "delisted": 0,
        "relisted": 2,
        "repriced": 30,
        "seconds": 12.5,
        "stones_per_second": 1560.0,
        "error": "2 partitions [dead-lettered]",
    }
    out = io.StringIO()
    progress.print_summary(summary, out)
    text = out.getvalue()
    assert (
        "nivoda-labgrown incremental run 00000000-0000-0000-0000-000000000001: partially_succeeded" in text
    )  # one line, however narrow the output
    assert "19,500 stones fetched in 400 pages over 20 partitions (1 failed)" in text
    header, row = [line.split() for line in text.splitlines() if line.strip()][-3:-1]
    assert dict(zip(header, row, strict=True))["unchanged"] == "19,350"
    assert text.splitlines()[-1] == "  error: 2 partitions [dead-lettered]"
    assert "\x1b[" not in text


def test_a_skipped_run_says_why() -> None:
    out = io.StringIO()
    progress.print_summary({"skipped": "a run of nivoda-natural is active"}, out)
    assert out.getvalue() == "skipped: a run of nivoda-natural is active\n"
