"""What `/api/ready` checks: each dependency the API cannot serve without, up or down, within a second.

The route is unauthenticated, so a check never runs twice at once (callers share the one in flight)
and the secret store's answer is reused for a few seconds: probing in a loop costs the database one
query at a time and Key Vault one request per few seconds, whoever asks. The causes go to the log only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from psycopg import AsyncConnection

from shared.secrets import CachedSecretStore

log = logging.getLogger("caratflow.api")
# Longest wait for any one answer; the checks run side by side.
WAIT_SECONDS = 1.0
SECRET_STORE_REUSE_SECONDS = 5.0


class SharedCheck:
    """An async check that callers share: one run in flight at a time, its answer reused for `reuse` s."""

    def __init__(self, name: str, check: Callable[[], Awaitable[object]], reuse: float) -> None:
        self.name, self.check, self.reuse = name, check, reuse
        self._answer: tuple[float, bool] | None = None  # (good until, up)
        self._running: asyncio.Task[bool] | None = None

    async def up(self) -> bool:
        if self._answer is not None and time.monotonic() < self._answer[0]:
            return self._answer[1]
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run())
        try:
            # shield: a caller that stops waiting leaves the run to finish for the next caller.
            return await asyncio.wait_for(asyncio.shield(self._running), WAIT_SECONDS)
        except TimeoutError:
            log.warning("readiness check timed out", extra={"dependency": self.name, "seconds": WAIT_SECONDS})
            return False

    async def _run(self) -> bool:
        try:
            await self.check()
        except Exception as exc:  # noqa: BLE001 - any failure means down; the cause goes to the log
            log.warning("readiness check failed", extra={"dependency": self.name, "error": repr(exc)[:500]})
            up = False
        else:
            up = True
        self._answer = (time.monotonic() + self.reuse, up)
        return up


class Readiness:
    """The checks of the app's database (through `connection`, a pooled connection for a block) and secret store."""

    def __init__(
        self, connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]], secrets: CachedSecretStore
    ) -> None:
        self.checks = [
            SharedCheck("database", lambda: _database(connection), reuse=0),
            SharedCheck("secret_store", lambda: asyncio.to_thread(secrets.ping), SECRET_STORE_REUSE_SECONDS),
        ]

    async def report(self) -> dict[str, str]:
        """{dependency: "up" | "down"} for every dependency."""
        answers = await asyncio.gather(*(check.up() for check in self.checks))
        return {check.name: "up" if up else "down" for check, up in zip(self.checks, answers, strict=True)}


async def _database(connection: Callable[[], AbstractAsyncContextManager[AsyncConnection]]) -> None:
    async with connection() as conn:
        await conn.execute("SELECT version FROM dataset_version")
