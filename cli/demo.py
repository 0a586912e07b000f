"""`caratflow demo`: the main job on embedded defaults, end to end on this machine.

Starts the embedded PostgreSQL and the feed emulator with a default inventory, runs a full sync of
every feed on the local host with live progress, then lets the emulator's inventory move (stones
sold, repriced, added) and runs an incremental sync of every feed. Then it issues a search key and
serves the API on the freshly synced catalogue, printing a signed example request, until Ctrl-C.
"""

from __future__ import annotations

import argparse

from cli.progress import print_summary, watch
from local_host.runtime import LocalRuntime
from shared.config import Settings, get_settings
from shared.db import embedded
from shared.feed.registry import FEEDS
from shared.runs.starts import SYNC, sync_instance_id, sync_request


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="embedded database + feed emulator: full sync, tick, incremental sync")
    parser.add_argument("--size", type=int, default=20_000, help="stones in the emulator's inventory")
    parser.add_argument("--seed", type=int, default=7, help="inventory seed")
    parser.add_argument("--keep-db", action="store_true", help="leave the embedded PostgreSQL running")
    parser.add_argument("--no-serve", action="store_true", help="stop after the syncs instead of serving the API")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from emulator.server import RunningEmulator

    settings = get_settings()
    if args.log_file:
        print(f"log: {args.log_file}", flush=True)
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
            if not args.no_serve and not failures:
                _serve(settings)
        finally:
            if settings.database_url is None and not args.keep_db:
                embedded.stop(settings.embedded_pg_dir)
    return 1 if failures else 0


def _sync_all(runtime: LocalRuntime, kind: str) -> int:
    failures = 0
    for feed in sorted(FEEDS):
        print(f"\n{kind} sync of {feed}", flush=True)
        instance = runtime.client.start_new(SYNC, sync_instance_id(feed), sync_request(feed, kind, "cli"))
        status = watch(runtime.client, instance)
        if status.runtime_status != "Completed":
            print(f"{feed}: {status.runtime_status}: {status.error}")
            failures += 1
            continue
        print_summary(status.output)
        failures += status.output.get("status") != "succeeded"
    return failures


def _serve(settings: Settings) -> None:
    """Issue a demo search key, print how to call the API with it, serve until Ctrl-C."""
    from caratflow_client.signing import sign_request
    from cli import serve
    from shared.access import keys
    from shared.db.connect import open_migrated_pool
    from shared.secrets import open_secret_store

    pool = open_migrated_pool(settings, name="caratflow-demo")
    try:
        issued = keys.create_key(pool, open_secret_store(settings), "demo", ["search"])
    finally:
        pool.close()
    base = settings.api_public_url or f"http://{settings.api_host}:{settings.api_port}"
    path, query = "/api/v1/diamonds", "shape=ROUND&carats_min=1&sort=price_cents&limit=3"
    signature = sign_request(key_id=issued.key_id, secret=issued.secret, method="GET", path=path, query=query)
    print(f"\nsearch API on {base} (docs: {base}/api/docs); a search key was issued for client 'demo'.")
    print("Signed example request (the client signs each request afresh):\n")
    print(f"  CARATFLOW_API_URL={base} CARATFLOW_KEY_ID={issued.key_id} CARATFLOW_API_SECRET={issued.secret} \\")
    print(f"    .venv/bin/python -m caratflow_client GET '{path}?{query}'\n")
    print(
        "or with curl (this signature is good once, for the next "
        f"{settings.api_signature_tolerance_seconds // 60} minutes):\n"
    )
    print(f"  curl -s '{base}{path}?{query}' -H 'Authorization: {signature.header()}'\n")
    print("Ctrl-C stops the API and the embedded database.", flush=True)
    serve.run(settings, host=settings.api_host, port=settings.api_port, drain_seconds=0)
