"""The sync's database goes away for real and comes back.

An activity then fails within seconds (not after the pool's old 30 s wait) with an error that says the
database is unreachable and which one it is; the orchestrators' retry policy (QUICK_RETRY: again after
2 s, then 4 s) runs it again, and by then the same pool serves it.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import psycopg
import pytest
from own_cluster import Cluster, own_cluster
from pydantic import SecretStr

from activities import deps
from local_host.client import LocalDurableClient
from local_host.host import Functions, LocalHost
from orchestrators.sync_run import QUICK_RETRY
from shared.config import Settings, load_settings
from shared.db.connect import open_migrated_pool, open_pool
from shared.db.pools import DatabaseUnavailable, unavailable

NAMED = r"PostgreSQL database postgres at .*pgdata:5432 unavailable"


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    with own_cluster(tmp_path) as running:
        yield running


@pytest.fixture
def own_settings(cluster: Cluster, tmp_path) -> Settings:
    return load_settings(database_url=SecretStr(cluster.url), scan_store_dir=tmp_path / "scans")


def activity(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    import function_app  # what the Functions host and the local host run

    return Functions.from_app(function_app.app).activities[name]


def timed_failure(call: Callable[[], object]) -> tuple[Exception, float]:
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError) as caught:
        call()
    return caught.value, time.monotonic() - started


class Attempts:
    """The real activity, noting each attempt's outcome and how long it took."""

    def __init__(self, activity: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.activity = activity
        self.outcomes: list[tuple[object, float]] = []
        self.failed = threading.Event()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        try:
            result = self.activity(request)
        except Exception as error:
            self.outcomes.append((error, time.monotonic() - started))
            self.failed.set()
            raise
        self.outcomes.append((result, time.monotonic() - started))
        return result


app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def consolidate_with_retry(context: df.DurableOrchestrationContext):
    """What sync_run's consolidation rounds do for each consolidator, with their retry policy."""
    return (yield context.call_activity_with_retry("consolidate_feed", QUICK_RETRY, context.get_input()))


ORCHESTRATORS = Functions.from_app(app).orchestrators  # an app indexes once


def test_an_activity_that_loses_its_database_fails_fast_and_its_durable_retry_succeeds(
    cluster: Cluster, own_settings: Settings, pool, monkeypatch
) -> None:
    """The local host keeps its own state in the test database (`pool`); the activities use the
    cluster that goes away, as in Azure, where durable state lives in Storage, not in PostgreSQL."""
    monkeypatch.setattr(deps, "_current", None)  # restored after the test
    consolidate_feed = Attempts(activity("consolidate_feed"))
    with open_pool(own_settings, name="caratflow-activities") as activities_pool:
        deps.use(own_settings, activities_pool)
        run_id = str(uuid.uuid4())
        as_of = datetime.now(UTC).isoformat()
        activity("create_run")(
            {"run_id": run_id, "feed": "nivoda-natural", "kind": "full", "trigger": "cli", "as_of": as_of}
        )
        consolidate = {"run_id": run_id, "feed": "nivoda-natural", "worker": "w0"}

        cluster.stop()
        # The first call may meet the idle connection the shutdown closed (AdminShutdown); the pool then
        # drops its idle connections and names the database when it gives up.
        for _ in range(2):
            error, seconds = timed_failure(lambda: consolidate_feed.activity(consolidate))
            assert seconds < 2.5, f"{type(error).__name__} after {seconds:.1f} s"
            assert unavailable(error), repr(error)
        assert isinstance(error, DatabaseUnavailable)
        assert re.match(NAMED, str(error)), str(error)

        host = LocalHost(pool, Functions(ORCHESTRATORS, {"consolidate_feed": consolidate_feed}), poll_interval=0.02)
        with host:
            client = LocalDurableClient(pool, on_change=host.wake)
            instance = client.start_new("consolidate_with_retry", client_input=consolidate)
            assert consolidate_feed.failed.wait(10), "the first attempt neither failed nor ended"
            cluster.start()
            restarted = time.monotonic()
            status = client.wait_for_completion(instance, timeout=15)
        assert status.runtime_status == "Completed", status.output
        assert status.output["more"] is False
        (first, first_seconds), (second, _) = consolidate_feed.outcomes
        assert isinstance(first, DatabaseUnavailable)
        assert first_seconds < 2.5
        assert isinstance(second, dict)  # the retry, QUICK_RETRY's first interval later
        assert time.monotonic() - restarted < QUICK_RETRY.first_retry_interval_in_milliseconds / 1000 + 1.5


def test_a_pool_opened_while_the_database_is_down_fails_fast_naming_it(
    cluster: Cluster, own_settings: Settings
) -> None:
    cluster.stop()
    error, seconds = timed_failure(lambda: open_pool(own_settings, name="caratflow-activities"))
    assert isinstance(error, DatabaseUnavailable)
    assert re.match(NAMED, str(error)), str(error)
    assert seconds < own_settings.db_connect_timeout_seconds + 1
    # An activity's first use in a fresh worker migrates first: the connection error names the server.
    error, seconds = timed_failure(lambda: open_migrated_pool(own_settings, name="caratflow-activities"))
    assert "pgdata" in str(error)
    assert seconds < own_settings.db_connect_timeout_seconds + 1

    cluster.start()  # nothing was kept from the failed opens: the next one simply works
    with open_pool(own_settings, name="caratflow-activities") as pool, pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
