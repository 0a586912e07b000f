"""What bench_api samples around a load run: CPU by process group, the API's database sessions, how the
connections spread over the workers, and how steady the machine is."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
import psutil
import psycopg
from common import progress

from shared.db.rows import one


def postmaster(database: str) -> psutil.Process | None:
    """The PostgreSQL server process of this database, when it runs on this machine."""
    with psycopg.connect(database) as conn:
        (backend,) = one(conn.execute("SELECT pg_backend_pid()").fetchone())
        try:
            return psutil.Process(backend).parent()  # while this backend still runs
        except psutil.Error:
            return None


def machine_busy() -> float:
    times = psutil.cpu_times()
    busy: float = times.user + times.nice + times.system + times.irq + times.softirq
    return busy


def cpu_snapshot(server: psutil.Process, database: psutil.Process | None) -> dict[str, Any]:
    """CPU seconds (user, system) so far of the server's processes and of the database's, and of the machine."""
    groups: dict[str, Any] = {"server": {}, "postgres": {}, "machine": machine_busy()}
    for group, root in (("server", server), ("postgres", database)):
        try:
            members = [root, *root.children(recursive=True)] if root else []
        except psutil.Error:
            members = []
        for process in members:
            try:
                times = process.cpu_times()
                groups[group][(process.pid, process.create_time())] = (times.user, times.system)
            except psutil.Error:
                continue  # ended meanwhile
    return groups


def cpu_used(before: dict[str, Any], after: dict[str, Any], load: float) -> dict[str, float]:
    """CPU seconds per group between two snapshots, the system (kernel) part of each as `<group>_sys`,
    the load tool's (measured by the caller), and the rest of the machine's as `other`."""
    used = {"load": load}
    for group in ("server", "postgres"):
        user = system = 0.0
        for key, (u, s) in after[group].items():
            u0, s0 = before[group].get(key, (0.0, 0.0))
            user, system = user + u - u0, system + s - s0
        used[group], used[f"{group}_sys"] = user + system, system
    used["other"] = max(0.0, after["machine"] - before["machine"] - used["server"] - used["postgres"] - load)
    return used


def host_speed(samples: int = 15) -> tuple[float, float, float]:
    """A fixed pure-Python loop, timed `samples` times half a second apart: min, median, max in ms.

    On a shared VM the same work takes a varying time; this puts the spread of the load figures in
    context.
    """
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        for i in range(200_000):
            hashlib.sha256(str(i).encode()).digest()
        timings.append((time.perf_counter() - started) * 1000)
        time.sleep(0.5)
    return min(timings), float(np.median(timings)), max(timings)


def wait_for_quiet(limit: float = 0.15, patience: float = 600) -> None:
    """Measure on a quiet machine: wait (up to `patience` s) until other work uses under `limit` of it."""
    deadline = time.monotonic() + patience
    while (busy := psutil.cpu_percent(interval=3) / 100) > limit:
        if time.monotonic() > deadline:
            progress(f"the machine is still {busy:.0%} busy with other work; measuring anyway (see 'other')")
            return
        progress(f"the machine is {busy:.0%} busy with other work; waiting")


def connections_per_process(server: psutil.Process, port: int) -> list[int]:
    """Established client connections each serving process holds (with --workers, each worker's).

    Workers accept from one shared socket; which one takes a connection is the kernel's choice, and
    a keep-alive connection stays with that worker for the whole run.
    """
    held: dict[psutil.Process, int] = {}
    for process in [server, *server.children(recursive=True)]:
        try:
            sockets = [c for c in process.net_connections("tcp") if c.laddr and c.laddr.port == port]
        except psutil.Error:
            continue
        if any(c.status == "LISTEN" for c in sockets):
            held[process] = sum(c.status == "ESTABLISHED" for c in sockets)
    if len(held) > 1:
        held.pop(server, None)  # the supervisor holds the socket but serves nothing
    return sorted(held.values(), reverse=True)


class SessionSampler:
    """What the API's PostgreSQL sessions do during a run, sampled from pg_stat_activity every 20 ms.

    A session that is idle waits for the server's next statement; one that is active runs (or waits
    inside PostgreSQL, e.g. on a lock). Which of the two dominates says where the time goes.
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.samples: list[list[tuple[Any, ...]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.database, autocommit=True) as conn:
            while not self._stop.wait(0.02):
                self.samples.append(
                    conn.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE application_name = 'caratflow-api'"
                    ).fetchall()
                )

    @staticmethod
    def summary(samples: list[list[tuple[Any, ...]]]) -> dict[str, Any]:
        n = len(samples) or 1
        states: Counter[str] = Counter()
        waits: Counter[str] = Counter()
        for sample in samples:
            for state, wait_type, wait in sample:
                if state == "active" and wait_type is None:
                    states["running"] += 1
                elif state == "active":
                    states["waiting"] += 1
                    waits[f"{wait_type}:{wait}"] += 1
                else:
                    states["idle"] += 1
        return {
            "sessions": sum(len(sample) for sample in samples) / n,
            **{state: states[state] / n for state in ("running", "waiting", "idle")},
            "waits": {wait: count / n for wait, count in waits.most_common(3)},
        }
