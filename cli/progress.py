"""Live progress of a run, read from the database, and the run summary, for the terminal.

The run outlives a restart of its database (the host's threads and the activities' retries carry on),
so the watcher does too: while the database is unreachable it says so in one line and keeps asking.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any, TextIO

from local_host.client import InstanceStatus, LocalDurableClient
from shared.db.pools import unavailable
from shared.sync import runs

BAR = 20


def watch(
    client: LocalDurableClient,
    instance_id: str,
    *,
    out: TextIO = sys.stdout,
    interval: float = 0.5,
    timeout: float = 24 * 3600,
) -> InstanceStatus:
    """Show per-partition progress until the instance finishes; return its final status."""
    deadline = time.monotonic() + timeout
    drawn = 0
    announced: set[int] = set()
    lost_at: float | None = None
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
                out.write(f"database unavailable ({_reason(exc)}); the run waits for it\n")
                out.flush()
                drawn = 0  # the progress block starts again below the notice
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance_id}: database unavailable at the deadline") from exc
            time.sleep(interval)
            continue
        if lost_at is not None:
            out.write(f"database back after {time.monotonic() - lost_at:.0f} s; the run goes on\n")
            lost_at = None
        if out.isatty():
            drawn = _redraw(out, drawn, _block(custom, partitions))
        else:
            for row in partitions:  # one line per finished partition keeps logs readable
                if row["status"] in ("fetched", "dead_lettered") and row["partition_no"] not in announced:
                    announced.add(row["partition_no"])
                    out.write(_line(row) + "\n")
            out.flush()
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
        return runs.partitions_of(conn, uuid.UUID(run_id))


def _block(custom: dict[str, Any], partitions: list[dict[str, Any]]) -> list[str]:
    head = (
        f"{custom.get('feed', '?')}: {custom.get('stage', 'starting')} - partitions "
        f"{custom.get('fetched', 0)}/{custom.get('partitions', len(partitions))} fetched, "
        f"{custom.get('failed', 0)} failed, {sum(p['rows_fetched'] for p in partitions):,} stones"
    )
    return [head, *(_line(p) for p in partitions)]


def _line(row: dict[str, Any]) -> str:
    expected = max(row["expected_count"], 1)
    done = min(BAR, round(BAR * row["rows_fetched"] / expected)) if row["status"] != "fetched" else BAR
    upper = "open" if row["dpc_to"] is None else f"{row['dpc_to']:,}"
    return (
        f"  #{row['partition_no']:<3} ${row['dpc_from']:>7,}-{upper:<7}/ct [{'=' * done}{' ' * (BAR - done)}] "
        f"{row['rows_fetched']:>7,}/{row['expected_count']:<7,} {row['status']}"
    )


def _redraw(out: TextIO, previous: int, lines: list[str]) -> int:
    if previous:
        out.write(f"\x1b[{previous}F\x1b[J")  # back to the block's first line, clear below
    out.write("\n".join(lines) + "\n")
    out.flush()
    return len(lines)


def print_summary(summary: dict[str, Any], out: TextIO = sys.stdout) -> None:
    if "skipped" in summary:
        out.write(f"skipped: {summary['skipped']}\n")
        return
    out.write(
        f"\n{summary.get('feed')} {summary.get('kind')} run {summary.get('run_id')}: {summary.get('status')}\n"
        f"  fetched {summary.get('fetched', 0):,} stones in {summary.get('pages', 0):,} pages over "
        f"{summary.get('partitions', 0)} partitions ({summary.get('failed_partitions', 0)} failed)\n"
        f"  new {summary.get('new', 0):,}, changed {summary.get('changed', 0):,}, "
        f"unchanged {summary.get('unchanged', 0):,}, delisted {summary.get('delisted', 0):,}, "
        f"relisted {summary.get('relisted', 0):,}, rejected {summary.get('rejected', 0):,}, "
        f"repriced {summary.get('repriced', 0):,}\n"
        f"  {summary.get('seconds', 0):.1f} s, {summary.get('stones_per_second', 0):,.0f} stones/s\n"
    )
    if summary.get("error"):
        out.write(f"  error: {summary['error']}\n")
