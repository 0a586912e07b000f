"""`caratflow admin ...`: the operator endpoints from a terminal, through the signed API.

Going through the API (not the database) means the same commands operate a local `caratflow serve`
and the deployment in Azure, with an admin-scoped key: CARATFLOW_API_URL, CARATFLOW_KEY_ID and
CARATFLOW_API_SECRET, as for `python -m caratflow_client`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from caratflow_client.client import CaratflowClient
from cli.signed import through_api
from shared.feed.registry import FEEDS


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser("admin", help="operate runs and dead letters through the API (admin key)")
    actions = admin.add_subparsers(dest="action", required=True)

    listing = actions.add_parser("runs", help="list runs, newest first")
    listing.add_argument("--feed", choices=sorted(FEEDS))
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(handler=lambda a, c: c.runs(feed=a.feed, status=a.status, limit=a.limit))

    show = actions.add_parser("run", help="one run with per-partition progress")
    show.add_argument("run_id")
    show.set_defaults(handler=lambda a, c: c.run(a.run_id))

    start = actions.add_parser("start", help="start a run of one feed")
    start.add_argument("feed", choices=sorted(FEEDS))
    start.add_argument("--kind", choices=["full", "incremental"], default="full")
    start.set_defaults(handler=lambda a, c: c.start_run(a.feed, a.kind))

    watch = actions.add_parser("watch", help="print a run's progress events until it finishes")
    watch.add_argument("run_id")
    watch.add_argument("--interval", type=float, default=1.0)
    watch.set_defaults(handler=_watch)

    for name, method, text in (
        ("replay", "replay_run", "fetch a finished run's dead-lettered partitions again, into that run"),
        ("resume", "resume_run", "consolidate and finalize a run stopped in consolidation"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("run_id")
        action.set_defaults(handler=lambda a, c, method=method: getattr(c, method)(a.run_id))

    cancel = actions.add_parser("cancel", help="cancel an unfinished run")
    cancel.add_argument("run_id")
    cancel.add_argument("--reason", default="cancelled by an operator")
    cancel.set_defaults(handler=lambda a, c: c.cancel_run(a.run_id, a.reason))

    letters = actions.add_parser("dead-letters", help="list dead letters")
    letters.add_argument("--status", choices=["open", "replaying", "replayed", "purged"])
    letters.add_argument("--run-id")
    letters.set_defaults(handler=lambda a, c: c.dead_letters(status=a.status, run_id=a.run_id))

    replay = actions.add_parser("replay-letter", help="replay a dead letter's run (all its open partitions)")
    replay.add_argument("letter_id")
    replay.set_defaults(handler=lambda a, c: c.replay_dead_letter(a.letter_id))

    purge = actions.add_parser("purge", help="purge an open dead letter (it stays on record)")
    purge.add_argument("letter_id")
    purge.set_defaults(handler=lambda a, c: c.purge_dead_letter(a.letter_id))

    admin.set_defaults(handler=_admin)
    # The sub-action's handler is kept apart from the top-level one the CLI dispatches on.
    for parser in actions.choices.values():
        parser.set_defaults(call=parser.get_default("handler"), handler=_admin)


def _admin(args: argparse.Namespace) -> int:
    code, _ = through_api(lambda client: args.call(args, client), command="caratflow admin")
    return code


def _watch(args: argparse.Namespace, client: CaratflowClient) -> Any:
    for kind, data in client.run_events(args.run_id, interval=args.interval):
        if kind == "progress":
            totals, run = data["totals"], data["run"]
            print(
                f"{run['status']:<14} partitions {totals['by_status']}  fetched {totals['rows_fetched']:,}"
                f"  backlog {totals['consolidation_backlog']:,}",
                flush=True,
            )
        else:
            print(f"{kind}: {json.dumps(data)}", flush=True)
    return None
