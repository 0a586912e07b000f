"""`caratflow notify list|show|retry|deliver`: notification deliveries, and sending what is due."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from shared.config import get_settings
from shared.db.connect import open_migrated_pool
from shared.notify import store
from shared.notify.deliver import deliver_due


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("notify", help="notification deliveries: list, show, retry, deliver")
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    listing = actions.add_parser("list", help="deliveries, newest first")
    listing.add_argument("--status", choices=store.DELIVERY_STATUSES)
    listing.add_argument("--limit", type=int, default=50)
    show = actions.add_parser("show", help="one delivery with every attempt")
    show.add_argument("delivery_id", type=int)
    retry = actions.add_parser("retry", help="re-queue a given-up delivery")
    retry.add_argument("delivery_id", type=int)
    deliver = actions.add_parser("deliver", help="fan out new events and send what is due now")
    deliver.add_argument("--max-seconds", type=float, default=50.0)
    parser.set_defaults(handler=_notify)


def _notify(args: argparse.Namespace) -> int:
    settings = get_settings()
    pool = open_migrated_pool(settings, name="caratflow-notify")
    try:
        if args.action == "deliver":
            report = deliver_due(pool, settings, max_seconds=args.max_seconds)
            print(" ".join(f"{key}={value}" for key, value in asdict(report).items()))
            return 1 if report.given_up else 0
        with pool.connection() as conn:
            if args.action == "list":
                for row in store.list_deliveries(conn, status=args.status, limit=args.limit):
                    print(json.dumps(row, default=str))
            elif args.action == "show":
                rows = store.list_deliveries(conn, delivery_id=args.delivery_id)
                if not rows:
                    raise LookupError(f"no delivery {args.delivery_id}")
                print(json.dumps(rows[0], default=str))
                for attempt in store.attempts_of(conn, args.delivery_id):
                    print("  " + json.dumps(attempt, default=str))
            else:
                store.requeue(conn, args.delivery_id)
                print(f"delivery {args.delivery_id} re-queued; `caratflow notify deliver` sends it now")
    except (LookupError, ValueError) as exc:
        print(f"caratflow notify: {exc}")
        return 1
    finally:
        pool.close()
    return 0
