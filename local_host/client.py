"""A durable-client-like interface to the local host: start, status, list, terminate, wait.

Its queries are not traced: it stands in for the Functions host's HTTP API, whose storage traffic is
no part of the application's traces (a trigger's span would otherwise show the host's bookkeeping).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions import OrchestrationRuntimeStatus
from opentelemetry.instrumentation.utils import suppress_instrumentation
from psycopg_pool import ConnectionPool

from local_host import store
from local_host.store import InstanceExists, InstanceNotFound

__all__ = ["AsyncLocalClient", "InstanceExists", "InstanceNotFound", "InstanceStatus", "LocalDurableClient"]

FINISHED = ("Completed", "Failed", "Terminated")


@dataclass(frozen=True)
class InstanceStatus:
    """The fields of DurableOrchestrationStatus that callers use, decoded from JSON."""

    instance_id: str
    name: str
    runtime_status: str
    input: Any
    output: Any
    custom_status: Any
    error: str | None
    parent_instance_id: str | None
    created_time: datetime
    last_updated_time: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> InstanceStatus:
        return cls(
            instance_id=row["instance_id"],
            name=row["name"],
            runtime_status=row["status"],
            input=_decode(row["input"]),
            output=_decode(row["output"]),
            custom_status=_decode(row["custom_status"]),
            error=row["error"],
            parent_instance_id=row["parent_instance_id"],
            created_time=row["created_at"],
            last_updated_time=row["updated_at"],
        )

    @property
    def is_finished(self) -> bool:
        return self.runtime_status in FINISHED


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class PurgeResult:
    """What the SDK's PurgeHistoryResult tells: how many instances went."""

    instances_deleted: int


class LocalDurableClient:
    def __init__(self, pool: ConnectionPool, on_change: Any = None) -> None:
        self.pool = pool
        self._on_change = on_change  # wakes an in-process host so it need not wait for its next poll

    def start_new(self, name: str, instance_id: str | None = None, client_input: Any = None) -> str:
        """Start an orchestration; raise InstanceExists if that id is pending or running."""
        instance_id = instance_id or uuid.uuid4().hex
        with suppress_instrumentation(), self.pool.connection() as conn, conn.transaction():
            store.create_instance(conn, name, instance_id, json.dumps(client_input), datetime.now(UTC))
        if self._on_change:
            self._on_change()
        return instance_id

    def get_status(self, instance_id: str) -> InstanceStatus:
        with suppress_instrumentation(), self.pool.connection() as conn:
            return InstanceStatus.from_row(store.instance_row(conn, instance_id))

    def list_instances(self, statuses: list[str] | None = None, limit: int = 100) -> list[InstanceStatus]:
        with suppress_instrumentation(), self.pool.connection() as conn:
            return [InstanceStatus.from_row(row) for row in store.instance_rows(conn, statuses, limit)]

    def terminate(self, instance_id: str, reason: str) -> list[str]:
        """Terminate an instance and its running sub-orchestrations; return what was terminated."""
        with suppress_instrumentation(), self.pool.connection() as conn, conn.transaction():
            store.instance_row(conn, instance_id)  # raises InstanceNotFound
            return store.terminate(conn, instance_id, reason, datetime.now(UTC))

    def purge_instance_history_by(
        self, created_time_from: datetime, created_time_to: datetime | None = None, runtime_status: Any = None
    ) -> PurgeResult:
        """Delete finished instances created in [from, to) with their history, messages, work and
        sub-orchestrations, as the SDK's purge does; Pending and Running ones are never touched."""
        if created_time_from is None:
            raise ValueError("created_time_from is required")
        wanted = {getattr(status, "value", status) for status in (runtime_status or FINISHED)} & set(FINISHED)
        with suppress_instrumentation(), self.pool.connection() as conn, conn.transaction():
            deleted = conn.execute(
                """DELETE FROM durable_instances
                   WHERE status = ANY(%s) AND created_at >= %s AND (%s::timestamptz IS NULL OR created_at < %s)""",
                (sorted(wanted), created_time_from, created_time_to, created_time_to),
            ).rowcount
        return PurgeResult(deleted)

    def wait_for_completion(self, instance_id: str, timeout: float, poll: float = 0.1) -> InstanceStatus:
        deadline = time.monotonic() + timeout
        while True:
            status = self.get_status(instance_id)
            if status.is_finished:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{instance_id} still {status.runtime_status} after {timeout} s")
            time.sleep(poll)


class AsyncLocalClient:
    """The local client behind the async methods of the SDK's DurableOrchestrationClient that caratflow
    calls, so client-function code (timer triggers, operator endpoints) runs unchanged on both hosts."""

    def __init__(self, client: LocalDurableClient) -> None:
        self.client = client

    async def start_new(
        self, orchestration_function_name: str, instance_id: str | None = None, client_input: Any = None
    ) -> str:
        return await asyncio.to_thread(self.client.start_new, orchestration_function_name, instance_id, client_input)

    async def get_status(self, instance_id: str) -> DurableStatus | None:
        try:
            status = await asyncio.to_thread(self.client.get_status, instance_id)
        except InstanceNotFound:
            return None
        return DurableStatus(status, OrchestrationRuntimeStatus(status.runtime_status))

    async def terminate(self, instance_id: str, reason: str) -> None:
        await asyncio.to_thread(self.client.terminate, instance_id, reason)

    async def purge_instance_history_by(
        self, created_time_from: datetime, created_time_to: datetime | None = None, runtime_status: Any = None
    ) -> PurgeResult:
        return await asyncio.to_thread(
            self.client.purge_instance_history_by, created_time_from, created_time_to, runtime_status
        )


@dataclass(frozen=True)
class DurableStatus:
    """An InstanceStatus whose runtime_status is the SDK's enum, as DurableOrchestrationStatus has it."""

    status: InstanceStatus
    runtime_status: OrchestrationRuntimeStatus

    def __getattr__(self, name: str) -> Any:
        return getattr(self.status, name)
