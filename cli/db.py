"""`caratflow db migrate|stop`: schema migrations and the embedded PostgreSQL."""

from __future__ import annotations

import argparse

from shared.config import get_settings
from shared.db import embedded
from shared.db.connect import connect, database_url
from shared.db.migrate import migrate


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("db", help="database: migrate, stop the embedded server")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("migrate", help="apply pending migrations").set_defaults(handler=_migrate)
    actions.add_parser("stop", help="stop the embedded PostgreSQL").set_defaults(handler=_stop)


def _migrate(args: argparse.Namespace) -> int:
    settings = get_settings()
    with connect(settings, database_url(settings), name="caratflow-cli") as conn:
        applied = migrate(conn)
    print(f"applied: {applied or 'nothing (up to date)'}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.database_url is not None:
        print("DATABASE_URL is set: no embedded server to stop")
        return 0
    stopped = embedded.stop(settings.embedded_pg_dir)
    print("embedded postgres stopped" if stopped else "embedded postgres was not running")
    return 0
