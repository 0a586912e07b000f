"""`caratflow demo`: the main job on embedded defaults, end to end on this machine.

Starts the embedded PostgreSQL and the feed emulator with a default inventory, runs a full sync of
every feed on the local host with live progress, then lets the emulator's inventory move (stones
sold, repriced, added) and runs an incremental sync of every feed.
"""

from __future__ import annotations

import argparse

from cli.progress import print_summary, watch
from local_host.runtime import LocalRuntime
from orchestrators.sync_run import sync_instance_id
from orchestrators.triggers import sync_request
from shared.config import get_settings
from shared.db import embedded
from shared.feed.registry import FEEDS


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="embedded database + feed emulator: full sync, tick, incremental sync")
    parser.add_argument("--size", type=int, default=20_000, help="stones in the emulator's inventory")
    parser.add_argument("--seed", type=int, default=7, help="inventory seed")
    parser.add_argument("--keep-db", action="store_true", help="leave the embedded PostgreSQL running")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from emulator.server import RunningEmulator

    settings = get_settings()
    print(f"feed emulator: {args.size:,} stones (seed {args.seed})", flush=True)
    with RunningEmulator(size=args.size, seed=args.seed) as feed:
        settings = settings.model_copy(
            update={
                # Smaller partitions than production's, so a small inventory still fans out visibly.
                "plan_target_partition_size": max(500, args.size // 20),
                "nivoda_endpoint": feed.url,
                "nivoda_username": feed.config.username,
                "nivoda_password": feed.config.password,
            }
        )
        where = "DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.embedded_pg_dir}"
        print(f"feed emulator on {feed.url}; database: {where}", flush=True)
        failures = 0
        try:
            with LocalRuntime(settings) as runtime:
                failures += _sync_all(runtime, "full")
                changed = feed.inventory.tick(sold=0.01, repriced=0.02, added=0.01)
                print(
                    f"\nemulator tick: {len(changed.sold)} sold, {len(changed.repriced)} repriced, "
                    f"{len(changed.added)} added, {len(changed.held)} holds changed",
                    flush=True,
                )
                failures += _sync_all(runtime, "incremental")
        finally:
            if settings.database_url is None and not args.keep_db:
                embedded.stop(settings.embedded_pg_dir)
    return 1 if failures else 0


def _sync_all(runtime: LocalRuntime, kind: str) -> int:
    failures = 0
    for feed in sorted(FEEDS):
        print(f"\n{kind} sync of {feed}", flush=True)
        instance = runtime.client.start_new("sync_run", sync_instance_id(feed), sync_request(feed, kind, "cli"))
        status = watch(runtime.client, instance)
        if status.runtime_status != "Completed":
            print(f"{feed}: {status.runtime_status}: {status.error}")
            failures += 1
            continue
        print_summary(status.output)
        failures += status.output.get("status") != "succeeded"
    return failures
