"""`caratflow demo`: the main job on embedded defaults, end to end on this machine.

Starts the embedded PostgreSQL and the feed emulator with a default inventory, then plans a sync
of every feed against it and prints the plans.
"""

from __future__ import annotations

import argparse

from cli.plan import print_plan, timed_plan
from shared.config import get_settings
from shared.db import embedded
from shared.db.connect import open_migrated_pool
from shared.feed.registry import FEEDS


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="embedded database + feed emulator + sync plan of every feed")
    parser.add_argument("--size", type=int, default=100_000, help="stones in the emulator's inventory")
    parser.add_argument("--seed", type=int, default=7, help="inventory seed")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from emulator.server import RunningEmulator

    from emulator.config import EmulatorConfig

    settings = get_settings()
    emulator_config = EmulatorConfig(port=0, size=args.size, seed=args.seed)
    print(f"feed emulator: {args.size:,} stones (seed {args.seed}) ...", flush=True)
    with RunningEmulator(emulator_config) as feed:
        settings = settings.model_copy(
            update={
                "nivoda_endpoint": feed.url,
                "nivoda_username": emulator_config.username,
                "nivoda_password": emulator_config.password,
            }
        )
        print(f"feed emulator listening on {feed.url}")
        pool = open_migrated_pool(settings, name="caratflow-demo")
        where = "DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.embedded_pg_dir}"
        print(f"database: {where}, migrated")
        try:
            for feed_name in sorted(FEEDS):
                print_plan(*timed_plan(settings, pool, feed_name))
        finally:
            pool.close()
            if settings.database_url is None:
                embedded.stop(settings.embedded_pg_dir)
    return 0
