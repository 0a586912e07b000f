"""Live progress of a run, read from the database, and the run summary, for the terminal.

On a terminal the watcher draws rich progress bars: the run's stones, and each partition being
fetched; a partition that gives up is printed above the bars, which log records (cli/terminal.py)
do not tear. Elsewhere (a pipe, a file, CI) it writes one plain line per finished partition.

The run outlives a restart of its database (the host's threads and the activities' retries carry on),
so the watcher does too: while the database is unreachable it says so in one line and keeps asking.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.terminal import console_for
from local_host.client import InstanceStatus, LocalDurableClient
from shared.db.pools import unavailable
from shared.runs.partitions import list_partitions

# Partition statuses that will not change any more in this run (a replay starts them again).
_FINISHED = ("fetched", "dead_lettered")
_GAVE_UP = ("failed", "dead_lettered")


def watch(
    client: LocalDurableClient,
    instance_id: str,
    *,
    out: TextIO | None = None,
    interval: float = 0.5,
    timeout: float = 24 * 3600,
) -> InstanceStatus:
    """Show per-partition progress until the instance finishes; return its final status.

    `out` is where to write (default: the terminal's console, stdout)."""
    deadline = time.monotonic() + timeout
    console = console_for(out)
    view: _View = _Bars(console) if console.is_terminal else _Lines(console)
    lost_at: float | None = None
    with view:
        while True:
            try:
                status = client.get_status(instance_id)
                custom = status.custom_status or {}
                partitions = _partitions(client, custom.get("run_id"))
            except Exception as exc:
                if not unavailable(exc):
                    raise
                if lost_at is None:
                    lost_at = time.monotonic()
                    view.note(f"database unavailable ({_reason(exc)}); the run waits for it")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{instance_id}: database unavailable at the deadline") from exc
                time.sleep(interval)
                continue
            if lost_at is not None:
                view.note(f"database back after {time.monotonic() - lost_at:.0f} s; the run goes on")
                lost_at = None
            view.show(custom, partitions)
            if status.is_finished:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance_id} still {status.runtime_status}")
            time.sleep(interval)


def _reason(exc: BaseException) -> str:
    """The first line of the error: enough to tell a restart from a refused connection."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _partitions(client: LocalDurableClient, run_id: str | None) -> list[dict[str, Any]]:
    if not run_id:
        return []
    with client.pool.connection() as conn:
        return list_partitions(conn, uuid.UUID(run_id))


def _band(row: dict[str, Any]) -> str:
    upper = "open" if row["dpc_to"] is None else f"{row['dpc_to']:,}"
    return f"#{row['partition_no']:<3} ${row['dpc_from']:>7,}-{upper:<7}/ct"


def _line(row: dict[str, Any]) -> str:
    return f"  {_band(row)} {row['rows_fetched']:>7,}/{row['expected_count']:<7,} {row['status']}"


class _View(Protocol):
    def __enter__(self) -> object: ...

    def __exit__(self, *exc: object) -> None: ...

    def note(self, text: str) -> None: ...

    def show(self, custom: dict[str, Any], partitions: list[dict[str, Any]]) -> None: ...


class _Lines:
    """Off a terminal: a line per notice and per finished partition, nothing redrawn."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.announced: set[int] = set()

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # nothing drawn to take down

    def note(self, text: str) -> None:
        self.console.print(text, soft_wrap=True, highlight=False, markup=False)

    def show(self, custom: dict[str, Any], partitions: list[dict[str, Any]]) -> None:
        for row in partitions:
            if row["status"] in _FINISHED and row["partition_no"] not in self.announced:
                self.announced.add(row["partition_no"])
                self.note(_line(row))


class _Bars:
    """On a terminal: a bar for the run's stones and one per partition still being fetched."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,  # drawn once per poll (below): no thread, and every poll is seen
        )
        self.run = self.progress.add_task("starting", total=None, detail="")
        self.bars: dict[int, TaskID] = {}
        self.announced: set[int] = set()

    def __enter__(self) -> _Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        self.progress.console.print(text, soft_wrap=True, highlight=False, markup=False)

    def show(self, custom: dict[str, Any], partitions: list[dict[str, Any]]) -> None:
        fetched = sum(row["status"] == "fetched" for row in partitions)
        gave_up = sum(row["status"] in _GAVE_UP for row in partitions)
        stones = sum(row["rows_fetched"] for row in partitions)
        expected = sum(row["expected_count"] for row in partitions)
        self.progress.update(
            self.run,
            description=f"{custom.get('feed', '?')}: {custom.get('stage', 'starting')}",
            total=expected or None,  # None until planned: an indeterminate bar
            completed=stones,
            detail=f"{stones:,} stones, partitions {fetched}/{len(partitions)} fetched, {gave_up} failed",
        )
        for row in partitions:
            self._show_partition(row)
        self.progress.refresh()

    def _show_partition(self, row: dict[str, Any]) -> None:
        number, status = row["partition_no"], row["status"]
        if status in _FINISHED:
            if number in self.bars:
                self.progress.remove_task(self.bars.pop(number))
            if status != "fetched" and number not in self.announced:
                self.announced.add(number)
                self.note(_line(row))  # a partition that gave up stays in view, above the bars
            return
        if status == "pending":
            return  # not started: a bar would only crowd the ones moving
        detail = f"{row['rows_fetched']:,}/{row['expected_count']:,} {status}"
        if row["attempts"] > 1:
            detail += f", attempt {row['attempts']}"
        if number not in self.bars:
            self.bars[number] = self.progress.add_task(f"  {_band(row)}", total=None, detail="")
        self.progress.update(
            self.bars[number], total=max(row["expected_count"], 1), completed=row["rows_fetched"], detail=detail
        )


def print_summary(summary: dict[str, Any], out: TextIO | None = None) -> None:
    """The run's outcome in a line, its counts in a table, and its error if it has one."""
    console = console_for(out)
    if "skipped" in summary:
        console.print(f"skipped: {summary['skipped']}", soft_wrap=True, highlight=False)
        return
    status = summary.get("status")
    colour = {"succeeded": "green", "partially_succeeded": "yellow"}.get(str(status), "red")
    console.print()
    console.print(
        f"{summary.get('feed')} {summary.get('kind')} run {summary.get('run_id')}: [{colour}]{status}[/]",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        f"  {summary.get('fetched', 0):,} stones fetched in {summary.get('pages', 0):,} pages over "
        f"{summary.get('partitions', 0)} partitions ({summary.get('failed_partitions', 0)} failed); "
        f"{summary.get('seconds', 0):.1f} s, {summary.get('stones_per_second', 0):,.0f} stones/s",
        soft_wrap=True,
        highlight=False,
    )
    counts = ("new", "changed", "unchanged", "delisted", "relisted", "rejected", "repriced")
    table = Table(box=None, padding=(0, 2), pad_edge=True)
    for name in counts:
        table.add_column(name, justify="right")
    table.add_row(*(f"{summary.get(name, 0):,}" for name in counts))
    console.print(table)
    if summary.get("error"):
        console.print(f"  error: {summary['error']}", soft_wrap=True, highlight=False, markup=False)
