"""The local Durable Functions host: runs the functions `function_app.py` registers, on a laptop.

Orchestrators go through the SDK's own replay engine (the `handle` the Python worker would call);
activities run on a pool of threads. All state lives in PostgreSQL (local_host/store.py), so a host
killed with SIGKILL and started again resumes every unfinished instance: messages not yet applied
are applied, and activities whose lease died with the old host run again (at least once, as in Azure).

A host holds a session advisory lock named after its id for as long as it lives. Another host that
can take that lock knows the first one is gone and frees its leases at once, instead of waiting for
them to expire.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from local_host import store
from local_host.engine import activity_failure, activity_result, run_episode
from shared.db.pools import unavailable
from shared.db.rows import one

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Functions:
    """The orchestrators and activities of a Functions app, by registered name."""

    orchestrators: dict[str, Callable[[str], str]]
    activities: dict[str, Callable[[Any], Any]]

    @classmethod
    def from_app(cls, app: Any) -> Functions:
        orchestrators, activities = {}, {}
        for function in indexed(app):
            trigger = function.get_trigger()
            if trigger.type == "orchestrationTrigger":
                orchestrators[function.get_function_name()] = function.get_user_function()
            elif trigger.type == "activityTrigger":
                activities[function.get_function_name()] = function.get_user_function()
        return cls(orchestrators, activities)


_INDEXED: dict[int, list[Any]] = {}


def indexed(app: Any) -> list[Any]:
    """`app.get_functions()`, once per app: a second call refuses the app's own names as duplicates."""
    if id(app) not in _INDEXED:
        _INDEXED[id(app)] = app.get_functions()
    return _INDEXED[id(app)]


def _now() -> datetime:
    return datetime.now(UTC)


def _liveness_key(host_id: str) -> int:
    return zlib.crc32(f"caratflow-local-host:{host_id}".encode())


class LocalHost:
    """Start with `start()`, stop with `stop()`; `client` starts and watches instances."""

    def __init__(
        self,
        pool: ConnectionPool,
        functions: Functions,
        *,
        activity_workers: int = 4,
        dispatchers: int = 1,
        lease: timedelta = timedelta(seconds=30),
        poll_interval: float = 0.05,
        host_id: str | None = None,
    ) -> None:
        self.pool = pool
        self.functions = functions
        self.host_id = host_id or f"host-{uuid.uuid4().hex[:12]}"
        self.activity_workers = activity_workers
        self.dispatchers = dispatchers
        self.lease = lease
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._in_flight: set[int] = set()
        self._in_flight_lock = threading.Lock()
        self._liveness: psycopg.Connection | None = None

    # --- lifecycle

    def start(self) -> LocalHost:
        self._stop.clear()
        self._hold_liveness()
        self.reclaim_dead_hosts()
        loops: list[tuple[str, Callable[..., None], Callable[[], bool] | None]]
        loops = [("dispatch", self._loop, self.dispatch_one)] * self.dispatchers
        loops += [("activity", self._loop, self.run_one_activity)] * self.activity_workers
        loops += [("leases", self._lease_loop, None)]
        for index, (role, target, step) in enumerate(loops):
            thread = threading.Thread(
                target=target, args=(step,) if step else (), name=f"{self.host_id}-{role}-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("local host started", extra={"host_id": self.host_id, "activity_workers": self.activity_workers})
        return self

    def stop(self, timeout: float = 30) -> None:
        """Finish in-flight work, then stop. Unfinished work stays in the database for the next host."""
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        try:
            with self.pool.connection() as conn:
                store.release_leases(conn, self.host_id)
        except Exception as exc:
            if not unavailable(exc):
                raise
            # Nothing is lost: the leases lapse, and the next host reclaims them as a dead host's.
            log.warning("leases not released: database unavailable", extra={"host_id": self.host_id, "error": str(exc)})
        if self._liveness is not None:
            self._liveness.close()
            self._liveness = None
        log.info("local host stopped", extra={"host_id": self.host_id})

    def __enter__(self) -> LocalHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _hold_liveness(self) -> None:
        """Hold this host's liveness lock on a connection of its own: other hosts take a host whose lock is
        free for dead and release its leases. A database restart frees it; the lease loop takes it again."""
        if self._liveness is not None:
            self._liveness.close()
        self._liveness = psycopg.connect(self._conninfo(), autocommit=True)
        self._liveness.execute("SELECT pg_advisory_lock(%s)", (_liveness_key(self.host_id),))

    def _conninfo(self) -> str:
        conninfo = self.pool.conninfo
        return conninfo() if callable(conninfo) else conninfo

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def reclaim_dead_hosts(self) -> list[str]:
        """Free the leases of hosts that no longer hold their liveness lock."""
        reclaimed = []
        with psycopg.connect(self._conninfo(), autocommit=True) as probe:
            for holder in store.lease_holders(probe):
                if holder == self.host_id:
                    continue
                key = _liveness_key(holder)
                (free,) = one(probe.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone())
                if free:
                    released = store.release_leases(probe, holder)
                    probe.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    log.warning("reclaimed leases of a dead host", extra={"dead_host": holder, "work_items": released})
                    reclaimed.append(holder)
        return reclaimed

    # --- loops

    def _idle(self) -> None:
        with self._wake:
            self._wake.wait(self.poll_interval)

    def _loop(self, step: Callable[[], bool]) -> None:
        """Run `step` until stopped; idle when it found nothing to do, back off when it failed."""
        while not self._stop.is_set():
            try:
                worked = step()
            except Exception as exc:
                if unavailable(exc):  # a restart or an outage, not a bug: one line, no traceback
                    log.warning(
                        "host loop step failed: database unavailable; retrying",
                        extra={"host_id": self.host_id, "step": step.__name__, "error": str(exc)},
                    )
                else:
                    log.exception(
                        "host loop step failed; retrying", extra={"host_id": self.host_id, "step": step.__name__}
                    )
                worked = False
                time.sleep(self.poll_interval * 10)
            if not worked:
                self._idle()

    def dispatch_one(self) -> bool:
        """Apply one due message to its instance; False when nothing was due."""
        with self.pool.connection() as conn, conn.transaction():
            now = _now()
            claimed = store.claim_message(conn, now)
            if claimed is None:
                return False
            if not claimed.current:
                store.drop_message(conn, claimed.message_id)
                return True
            orchestrator = self.functions.orchestrators.get(claimed.instance.name)
            if orchestrator is None:
                raise LookupError(f"no orchestrator named {claimed.instance.name!r} is registered")
            episode = run_episode(orchestrator, claimed.instance, claimed.history, claimed.event, now)
            store.apply_episode(conn, claimed, episode, now)
        if episode.activities or episode.children or episode.status != "Running":
            self.wake()
        return True

    def run_one_activity(self) -> bool:
        with self.pool.connection() as conn:
            item = store.claim_work(conn, self.host_id, self.lease)
        if item is None:
            return False
        with self._in_flight_lock:
            self._in_flight.add(item.work_id)
        try:
            result_event = self._execute(item)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(item.work_id)
        with self.pool.connection() as conn, conn.transaction():
            delivered = store.finish_work(conn, item, self.host_id, result_event, _now())
        if not delivered:
            log.warning("activity lease lost; its result was not delivered", extra={"work_id": item.work_id})
        self.wake()
        return True

    def _execute(self, item: store.WorkItem) -> dict[str, Any]:
        function = self.functions.activities.get(item.name)
        try:
            if function is None:
                raise LookupError(f"no activity named {item.name!r} is registered")
            # The Python worker decodes the activity's JSON input and encodes its return value.
            result = function(None if item.input is None else json.loads(item.input))
            return activity_result(item.task_id, json.dumps(result), _now())
        except Exception as exc:  # noqa: BLE001 - an activity failure is a result the orchestrator sees
            log.warning(
                "activity failed",
                extra={"activity": item.name, "instance_id": item.instance_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            return activity_failure(item.task_id, item.name, exc, _now())

    def _lease_loop(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            with self._in_flight_lock:
                running = list(self._in_flight)
            try:
                if self._liveness is None or self._liveness.closed or self._liveness.broken:
                    self._hold_liveness()
                else:
                    self._liveness.execute("SELECT 1")  # finds out that a restart closed it
                with self.pool.connection() as conn:
                    store.renew_leases(conn, self.host_id, running, self.lease)
                self.reclaim_dead_hosts()
            except psycopg.Error as exc:
                if unavailable(exc):
                    log.warning(
                        "lease renewal failed: database unavailable", extra={"host_id": self.host_id, "error": str(exc)}
                    )
                else:
                    log.exception("lease renewal failed", extra={"host_id": self.host_id})
