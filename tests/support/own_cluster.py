"""A throwaway embedded PostgreSQL of one test's own, for tests that stop the database for real.

The session-wide `pg_server` is shared by every test and must never go down; this one costs ~0.6 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared.db import embedded
from shared.db.migrate import migrate


@dataclass(frozen=True)
class Cluster:
    data_dir: Path
    url: str

    def stop(self) -> None:
        assert embedded.stop(self.data_dir), "the cluster was not running"

    def start(self) -> None:
        assert embedded.start(self.data_dir) == self.url


@contextmanager
def own_cluster(parent: Path) -> Iterator[Cluster]:
    """A migrated cluster in `parent`, stopped at the end whatever state the test left it in."""
    data_dir = parent / "pgdata"
    url = embedded.start(data_dir)
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
        yield Cluster(data_dir, url)
    finally:
        embedded.stop(data_dir)
