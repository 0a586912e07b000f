"""`caratflow keys create|list|rotate|revoke|rotate-server-key`: API clients and their keys, and the
API's own server keys (which MAC the cursors and media links it hands out).

A secret is printed once, when it is issued; the database keeps only its hash and the secret store
(Key Vault in Azure, a local file on a laptop) keeps the value.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from shared.access import keys, server_keys
from shared.config import get_settings
from shared.db.connect import open_migrated_pool
from shared.secrets import open_secret_store


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("keys", help="manage API clients and their keys")
    actions = parser.add_subparsers(dest="action", required=True, metavar="action")
    create = actions.add_parser("create", help="issue a key (creates the client if needed)")
    create.add_argument("client_id", help="client name: lower-case letters, digits and dashes")
    create.add_argument(
        "--scope", action="append", choices=keys.SCOPES, default=None, help="repeat for several; default: search"
    )
    create.add_argument("--expires-in-days", type=float, help="the key stops working after this")
    rotate = actions.add_parser("rotate", help="add a new secret; older ones expire after the overlap")
    rotate.add_argument("key_id")
    rotate.add_argument("--overlap-hours", type=float, default=24.0, help="how long old secrets keep working")
    revoke = actions.add_parser("revoke", help="revoke a key, or every key of a client")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--key", dest="key_id")
    target.add_argument("--client", dest="client_id")
    actions.add_parser("list", help="clients, keys and secret versions (never secrets)")
    actions.add_parser(
        "rotate-server-key",
        help="new server key for cursors and media links; tokens under the previous one keep working until the next",
    )
    parser.set_defaults(handler=_keys)


def _keys(args: argparse.Namespace) -> int:
    settings = get_settings()
    store = open_secret_store(settings)
    pool = open_migrated_pool(settings, name="caratflow-keys")
    try:
        if args.action == "create":
            expires = datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
            issued = keys.create_key(pool, store, args.client_id, args.scope or ["search"], expires_at=expires)
            _print_secret(issued, "issued")
        elif args.action == "rotate":
            issued = keys.rotate_key(pool, store, args.key_id, timedelta(hours=args.overlap_hours))
            _print_secret(issued, f"rotated (older secrets keep working for {args.overlap_hours:g} h)")
        elif args.action == "revoke":
            revoked = [args.key_id] if args.key_id else None
            if args.key_id:
                keys.revoke_key(pool, store, args.key_id)
            else:
                revoked = keys.revoke_client(pool, store, args.client_id)
            print(f"revoked: {', '.join(revoked or []) or 'no keys'}")
        elif args.action == "rotate-server-key":
            with pool.connection() as conn:
                version = server_keys.rotate(conn)
            print(f"server key {version} now signs; key {version - 1} still verifies until the next rotation")
        else:
            for row in keys.list_keys(pool):
                print(json.dumps(row, default=str))
    except LookupError as exc:
        print(f"caratflow keys: {exc}")
        return 1
    finally:
        pool.close()
    return 0


def _print_secret(issued: keys.IssuedSecret, what: str) -> None:
    print(f"key {issued.key_id} of client {issued.client_id} {what}")
    print(f"  CARATFLOW_KEY_ID={issued.key_id}")
    print(f"  CARATFLOW_API_SECRET={issued.secret}")
    print("The secret is shown only now; store it where the caller keeps secrets.")
