"""Stopping the embedded PostgreSQL: a fast shutdown that takes too long becomes an immediate one."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest
from own_cluster import own_cluster

from shared.db import embedded


def test_a_stop_that_outlasts_its_timeout_shuts_down_immediately_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with own_cluster(tmp_path) as cluster:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n integer)")
            conn.execute("INSERT INTO kept VALUES (42)")
        caplog.set_level(logging.WARNING, logger="shared.db.embedded")
        assert embedded.stop(cluster.data_dir, timeout=0)  # no time for the fast shutdown's checkpoint
        assert "immediate shutdown" in caplog.text
        assert not (cluster.data_dir / "postmaster.pid").exists()
        cluster.start()  # recovers from the WAL
        with psycopg.connect(cluster.url) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]
