"""caratflow's Functions app on the local host: the same registered functions, a local database."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from activities import deps
from local_host.client import LocalDurableClient
from local_host.host import Functions, LocalHost
from shared.config import Settings
from shared.db.connect import open_migrated_pool


class LocalRuntime:
    """Opens the database, points the activities at it, and runs `function_app.app` on a LocalHost."""

    def __init__(
        self,
        settings: Settings,
        *,
        activity_workers: int = 4,
        pool: ConnectionPool | None = None,
        host_id: str | None = None,
    ) -> None:
        import function_app  # the Azure entry point itself: what runs here is what Azure runs

        self.settings = settings
        self.pool = pool or open_migrated_pool(settings, name="caratflow-local-host")
        self._owns_pool = pool is None
        deps.use(settings, self.pool)
        self.host = LocalHost(
            self.pool, Functions.from_app(function_app.app), activity_workers=activity_workers, host_id=host_id
        )
        self.client = LocalDurableClient(self.pool, on_change=self.host.wake)

    def __enter__(self) -> LocalRuntime:
        self.host.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.host.stop()
        if self._owns_pool:
            self.pool.close()
