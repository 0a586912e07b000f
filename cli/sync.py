"""`caratflow sync|host|runs|dead-letters`: runs on the local host, and what they left behind."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

from cli.progress import print_summary, watch
from local_host.client import InstanceExists, InstanceStatus
from local_host.runtime import LocalRuntime
from shared.config import get_settings
from shared.db.connect import open_migrated_pool
from shared.feed.registry import FEEDS
from shared.runs import dead_letters, lifecycle, partitions, reads
from shared.runs.starts import REPLAY, SYNC, replay_instance_id, run_request, sync_instance_id, sync_request
from shared.runs.states import UnknownRun


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
                SYNC, sync_instance_id(args.feed), sync_request(args.feed, args.kind, "cli")
            )
        except InstanceExists:
            print(f"a run of {args.feed} is already active; `caratflow host` resumes it", file=sys.stderr)
            return 1
        status = watch(runtime.client, instance)
    return _report(status)


def _report(status: InstanceStatus) -> int:
    if status.runtime_status != "Completed":
        print(f"{status.instance_id}: {status.runtime_status}: {status.error}", file=sys.stderr)
        return 1
    if status.output.get("status") == "refused":  # the run moved on since the rule was asked
        print(f"{status.instance_id}: refused: {status.output['reason']}", file=sys.stderr)
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
            if status.name == SYNC and status.output:
                print_summary(status.output)
    return 0


def _runs(args: argparse.Namespace) -> int:
    pool = open_migrated_pool(get_settings(), name="caratflow-cli")
    try:
        with pool.connection() as conn:
            if args.run_id is None:
                for run in reads.list_runs(conn, args.feed, limit=args.limit):
                    summary = run["summary"] or {}
                    print(
                        f"{run['run_id']}  {run['feed']:<16} {run['kind']:<11} {run['status']:<20} "
                        f"{run['started_at']:%Y-%m-%d %H:%M:%S}  fetched {summary.get('fetched', '-')}"
                    )
                return 0
            record = reads.run_record(conn, args.run_id)
            if record is None:
                print(f"no run {args.run_id}", file=sys.stderr)
                return 1
            print(json.dumps(record, default=str, indent=2))
            for row in partitions.list_partitions(conn, args.run_id):
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
    pool = open_migrated_pool(settings, name="caratflow-cli")
    try:
        with pool.connection() as conn:
            if args.action == "list":
                for letter in dead_letters.list_letters(conn, None, None, 200):
                    print(
                        f"{letter['dead_letter_id']}  run {letter['run_id']}  {letter['kind']} "
                        f"#{letter['partition_no']}  {letter['status']:<9} attempts {letter['attempts']}  "
                        f"{letter['created_at']:%Y-%m-%d %H:%M:%S}  {letter['error'][:100]}"
                    )
                return 0
            if args.run_id is None:
                print("replay needs the run id", file=sys.stderr)
                return 2
            # The replay rule, asked before starting: the same answer the API gives, and the activity
            # applies it again under the run's lock (shared/runs/lifecycle.py).
            try:
                refusal = lifecycle.replay_refusal_for(conn, args.run_id)
            except UnknownRun as exc:
                print(exc, file=sys.stderr)
                return 1
    finally:
        pool.close()
    if refusal is not None:
        print(f"{refusal.detail}. {refusal.hint}", file=sys.stderr)
        return 1
    with LocalRuntime(settings) as runtime:
        instance = runtime.client.start_new(REPLAY, replay_instance_id(args.run_id), run_request(args.run_id))
        return _report(watch(runtime.client, instance))
