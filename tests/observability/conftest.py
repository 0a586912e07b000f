"""One small sync, started the way an HTTP route starts it, with everything it emitted: log records,
spans, metric readings. Module-scoped: the tests here read the same run from different sides."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from emulator.server import RunningEmulator
from local_host.client import AsyncLocalClient, InstanceStatus
from local_host.runtime import LocalRuntime
from shared import logs
from shared.config import load_settings
from shared.db.connect import open_pool
from shared.runs.starts import start_sync
from shared.telemetry import capture_spans, prometheus_text, read_metrics

CORRELATION_ID = "obs-4711"  # what a caller would send as X-Correlation-Id
FEED = "nivoda-natural"


# What read_metrics returns: points by metric name and attributes.
Metrics = dict[str, dict[frozenset[tuple[str, Any]], float]]


@dataclass
class ObservedRun:
    correlation_id: str
    feed: str
    pool: Any
    status: InstanceStatus
    run_id: str
    records: list[logging.LogRecord]
    spans: list[Any]
    metrics_before: Metrics
    metrics_after: Metrics
    prometheus: bytes

    def history(self, query: str, *params: object) -> list[dict[str, Any]]:
        with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows: list[dict[str, Any]] = cur.execute(query, params).fetchall()
            return rows


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def observed_run(pg_server: str, template_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservedRun]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    template = psycopg.conninfo.conninfo_to_dict(template_url)["dbname"]
    assert isinstance(template, str)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(database), sql.Identifier(template))
        )
    with RunningEmulator(size=900, seed=5) as feed:
        settings = load_settings(
            database_url=psycopg.conninfo.make_conninfo(pg_server, dbname=database),
            scan_store_dir=tmp_path_factory.mktemp("scans"),
            nivoda_endpoint=feed.url,
            nivoda_username=feed.config.username,
            nivoda_password=feed.config.password,
            feed_rate_limit_per_second=1000,
            feed_timeout_seconds=2.0,
            # A handful of partitions in two batches: sub-orchestrations two levels deep.
            plan_target_partition_size=100,
            sync_batch_size=2,
            sync_fetch_retry_first_seconds=0.2,
        )
        pool = open_pool(settings, name="caratflow-observability")
        records = Records()
        root = logging.getLogger()
        level = root.level
        root.addHandler(records)
        root.setLevel(logging.DEBUG)  # "activity finished" is a DEBUG line
        try:
            with LocalRuntime(settings, pool=pool, activity_workers=2) as runtime, capture_spans() as spans:
                before = read_metrics()
                # As api/middleware.py does for a request; the route then starts the run.
                with logs.correlated(correlation_id=CORRELATION_ID):
                    started = asyncio.run(start_sync(AsyncLocalClient(runtime.client), FEED, "full", "http"))
                assert started is not None  # no run was active
                status = runtime.client.wait_for_completion(started["instance_id"], timeout=120)
                after = read_metrics()
                body, _ = prometheus_text()
        finally:
            root.removeHandler(records)
            root.setLevel(level)
        assert status.runtime_status == "Completed", status.error
        yield ObservedRun(
            correlation_id=CORRELATION_ID,
            feed=FEED,
            pool=pool,
            status=status,
            run_id=status.output["run_id"],
            records=records.records,
            spans=list(spans.get_finished_spans()),
            metrics_before=before,
            metrics_after=after,
            prometheus=body,
        )
        pool.close()
