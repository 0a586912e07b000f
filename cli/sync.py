"""`caratflow sync|host|runs|dead-letters`: runs on the local host, and what they left behind."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

from cli.progress import print_summary, watch
from local_host.client import InstanceExists
from local_host.runtime import LocalRuntime
from orchestrators.sync_run import sync_instance_id
from orchestrators.triggers import sync_request
from shared.config import get_settings
from shared.db.connect import open_migrated_pool
from shared.feed.registry import FEEDS
from shared.sync import runs


def register(commands: argparse._SubParsersAction) -> None:
    sync = commands.add_parser("sync", help="run a sync of one feed on the local host and watch it")
    sync.add_argument("--feed", choices=sorted(FEEDS), required=True)
    kind = sync.add_mutually_exclusive_group(required=True)
    kind.add_argument("--full", dest="kind", action="store_const", const="full")
    kind.add_argument("--incremental", dest="kind", action="store_const", const="incremental")
    sync.add_argument("--workers", type=int, default=4, help="activity threads (default 4)")
    sync.set_defaults(handler=_sync)

    host = commands.add_parser("host", help="run the local host: resume unfinished runs, then keep serving")
    host.add_argument("--until-idle", action="store_true", help="exit once no orchestration is pending or running")
    host.add_argument("--workers", type=int, default=4)
    host.set_defaults(handler=_host)

    listing = commands.add_parser("runs", help="list runs, or show one with its partitions")
    listing.add_argument("run_id", nargs="?", type=uuid.UUID)
    listing.add_argument("--feed", choices=sorted(FEEDS))
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(handler=_runs)

    letters = commands.add_parser("dead-letters", help="list dead letters, or replay a run's into it")
    letters.add_argument("action", choices=["list", "replay"])
    letters.add_argument("run_id", nargs="?", type=uuid.UUID, help="the run to replay (replay only)")
    letters.set_defaults(handler=_dead_letters)


def _sync(args: argparse.Namespace) -> int:
    with LocalRuntime(get_settings(), activity_workers=args.workers) as runtime:
        try:
            instance = runtime.client.start_new(
                "sync_run", sync_instance_id(args.feed), sync_request(args.feed, args.kind, "cli")
            )
        except InstanceExists:
            print(f"a run of {args.feed} is already active; `caratflow host` resumes it", file=sys.stderr)
            return 1
        status = watch(runtime.client, instance)
    return _report(status)


def _report(status) -> int:
    if status.runtime_status != "Completed":
        print(f"{status.instance_id}: {status.runtime_status}: {status.error}", file=sys.stderr)
        return 1
    print_summary(status.output)
    return 0 if status.output.get("status") in ("succeeded", None) else 1


def _host(args: argparse.Namespace) -> int:
    with LocalRuntime(get_settings(), activity_workers=args.workers) as runtime:
        print(f"local host {runtime.host.host_id} running", flush=True)
        while True:
            active = runtime.client.list_instances(["Pending", "Running"])
            if args.until_idle and not active:
                break
            time.sleep(0.5)
        for status in runtime.client.list_instances(limit=20):
            if status.name == "sync_run" and status.output:
                print_summary(status.output)
    return 0


def _runs(args: argparse.Namespace) -> int:
    pool = open_migrated_pool(get_settings(), name="caratflow-cli")
    try:
        with pool.connection() as conn:
            if args.run_id is None:
                for run in runs.runs_of(conn, args.feed, args.limit):
                    summary = run["summary"] or {}
                    print(
                        f"{run['run_id']}  {run['feed']:<16} {run['kind']:<11} {run['status']:<20} "
                        f"{run['started_at']:%Y-%m-%d %H:%M:%S}  fetched {summary.get('fetched', '-')}"
                    )
                return 0
            record = runs.run_record(conn, args.run_id)
            if record is None:
                print(f"no run {args.run_id}", file=sys.stderr)
                return 1
            print(json.dumps(record, default=str, indent=2))
            for row in runs.partitions_of(conn, args.run_id):
                print(
                    f"  #{row['partition_no']:<4} [{row['dpc_from']}, {row['dpc_to'] or 'inf'}) "
                    f"{row['status']:<14} offset {row['next_offset']:<7} pages {row['pages']:<5} "
                    f"fetched {row['rows_fetched']:<7} rejected {row['rows_rejected']:<5} attempts {row['attempts']}"
                    + (f"  error: {row['last_error'][:120]}" if row["last_error"] else "")
                )
    finally:
        pool.close()
    return 0


def _dead_letters(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.action == "list":
        pool = open_migrated_pool(settings, name="caratflow-cli")
        try:
            with pool.connection() as conn:
                rows = conn.execute(
                    """SELECT dead_letter_id, run_id, kind, partition_no, status, attempts, created_at, error
                       FROM dead_letters ORDER BY created_at DESC LIMIT 200"""
                ).fetchall()
        finally:
            pool.close()
        for letter_id, run_id, kind, number, status, attempts, created, error in rows:
            print(
                f"{letter_id}  run {run_id}  {kind} #{number}  {status:<9} attempts {attempts}  "
                f"{created:%Y-%m-%d %H:%M:%S}  {error[:100]}"
            )
        return 0
    if args.run_id is None:
        print("replay needs the run id", file=sys.stderr)
        return 2
    with LocalRuntime(settings) as runtime:
        instance = runtime.client.start_new("sync_replay", client_input={"run_id": str(args.run_id)})
        return _report(watch(runtime.client, instance))
