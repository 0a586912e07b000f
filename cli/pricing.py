"""`caratflow pricing ...`: rule sets, repricing jobs, the audit trail and quotes, through the signed API.

Like `caratflow admin`, it goes through the API (CARATFLOW_API_URL, CARATFLOW_KEY_ID, CARATFLOW_API_SECRET)
with a key whose client has the pricing scope, so it prices a laptop's `caratflow serve` and the Azure
deployment alike, and every change is recorded as that key's. `edit` reads a draft from a YAML or JSON file:
its note, defaults and rules (what `show` prints, so `show` -> file -> `edit` round-trips, and the revision
the file was read at refuses the edit if the draft changed since).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from caratflow_client.client import CaratflowClient
from cli.signed import through_api
from shared.pricing.audit import ACTIONS

# What a read of a set shows besides its content; `edit` takes a file that `show` printed.
_READ_ONLY = ("pricing_version", "status", "created_at", "created_by", "copied_from", "updated_at", "activated_at",
              "retired_at", "rule_count")  # fmt: skip


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pricing = commands.add_parser("pricing", help="rule sets, repricing jobs, audit and quotes through the API")
    actions = pricing.add_subparsers(dest="action", required=True, metavar="action")

    listing = actions.add_parser("sets", help="rule sets, newest first")
    listing.add_argument("--status", choices=["draft", "active", "retired"])
    listing.set_defaults(call=lambda a, c: c.pricing_sets(a.status))

    show = actions.add_parser("show", help="one rule set with its defaults and rules")
    show.add_argument("pricing_version", type=int)
    show.set_defaults(call=lambda a, c: c.pricing_set(a.pricing_version))

    create = actions.add_parser("create", help="a new draft, empty or from a YAML or JSON file")
    create.add_argument("file", nargs="?", type=Path, help="note, defaults and rules")
    create.set_defaults(call=lambda a, c: c.create_pricing_set(_content(a.file)[0] if a.file else None))

    copy = actions.add_parser("copy", help="a new draft with the rules of any version")
    copy.add_argument("pricing_version", type=int)
    copy.add_argument("--note")
    copy.set_defaults(call=lambda a, c: c.copy_pricing_set(a.pricing_version, a.note))

    edit = actions.add_parser("edit", help="replace a draft's note, defaults and rules with a YAML or JSON file's")
    edit.add_argument("pricing_version", type=int)
    edit.add_argument("file", type=Path)
    edit.add_argument("--revision", type=int, help="refuse if the draft is no longer at it (default: the file's)")
    edit.add_argument("--comment", default="")
    edit.set_defaults(call=_edit)

    delete = actions.add_parser("delete", help="delete a draft (it stays in the audit trail)")
    delete.add_argument("pricing_version", type=int)
    delete.add_argument("--comment", default="")
    delete.set_defaults(call=lambda a, c: c.delete_pricing_set(a.pricing_version, a.comment))

    validate = actions.add_parser("validate", help="a set's errors and warnings (exit 1 when it has errors)")
    validate.add_argument("pricing_version", type=int)
    validate.set_defaults(call=lambda a, c: c.validate_pricing_set(a.pricing_version))

    preview = actions.add_parser("preview", help="what a set would do to the listed catalogue")
    preview.add_argument("pricing_version", type=int)
    preview.add_argument("--largest", type=int, default=20, help="how many of the largest changes to show")
    preview.set_defaults(call=lambda a, c: c.preview_pricing_set(a.pricing_version, a.largest))

    for name, method, text in (
        ("activate", "activate_pricing_set", "activate a draft: start its repricing job"),
        ("revert", "revert_pricing_set", "make a retired set active again: start its repricing job"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("pricing_version", type=int)
        action.add_argument("--comment", required=True, help="why (recorded in the audit trail)")
        action.add_argument("--watch", action="store_true", help="then print the job's progress until it ends")
        action.set_defaults(call=lambda a, c, method=method: _activate(a, c, method))

    jobs = actions.add_parser("jobs", help="repricing jobs, newest first")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(call=lambda a, c: c.repricing_jobs(a.limit))

    for name, method, text in (
        ("job", "repricing_job", "one repricing job and its progress"),
        ("cancel", "cancel_repricing_job", "cancel a job: the previous version comes back and it reprices back"),
        ("resume", "resume_repricing_job", "carry a failed job on from its checkpoint"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("job_id")
        action.set_defaults(call=lambda a, c, method=method: getattr(c, method)(a.job_id))

    watch = actions.add_parser("watch", help="print a job's progress until it ends")
    watch.add_argument("job_id")
    watch.add_argument("--interval", type=float, default=1.0)
    watch.set_defaults(call=lambda a, c: _watch(c, a.job_id, a.interval))

    audit = actions.add_parser("audit", help="the audit trail, newest first")
    audit.add_argument("--pricing-version", type=int)
    audit.add_argument("--action", choices=ACTIONS)
    audit.add_argument("--actor", help="an API client, operator or component name")
    audit.add_argument("--since", help="ISO time with a zone, e.g. 2026-11-22T10:00:00Z")
    audit.add_argument("--until", help="ISO time with a zone")
    audit.add_argument("--before", type=int, help="page on: an audit_id")
    audit.add_argument("--limit", type=int, default=50)
    audit.set_defaults(call=_audit)

    quote = actions.add_parser("quote", help="the price of a stone under a version (default: the active one)")
    stone = quote.add_mutually_exclusive_group(required=True)
    stone.add_argument("--diamond-id", help="a catalogue stone")
    stone.add_argument("--stone", type=Path, help="a YAML or JSON file describing a stone (feed, shape, carats, ...)")
    quote.add_argument("--pricing-version", type=int)
    quote.set_defaults(call=_quote)

    pricing.set_defaults(handler=_pricing)


def _pricing(args: argparse.Namespace) -> int:
    # A file to read that is missing, or neither YAML nor JSON, is the caller's to fix: exit 2.
    code, result = through_api(
        lambda client: args.call(args, client), command="caratflow pricing", local_errors=(OSError, ValueError)
    )
    return 1 if code == 0 and isinstance(result, dict) and result.get("valid") is False else code


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    import yaml  # only here: the rest of the CLI does without it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is neither YAML nor JSON: {exc}") from None


def _content(path: Path) -> tuple[dict[str, Any], int | None]:
    """A draft's content from a file, and the revision the file was read at (if it is a read of a set)."""
    data = _load(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds no mapping of note, defaults and rules")
    revision = data.pop("revision", None)
    for name in _READ_ONLY:
        data.pop(name, None)
    return data, revision if isinstance(revision, int) else None


def _edit(args: argparse.Namespace, client: CaratflowClient) -> Any:
    content, revision = _content(args.file)
    revision = args.revision if args.revision is not None else revision
    return client.edit_pricing_set(args.pricing_version, content, revision=revision, comment=args.comment)


def _activate(args: argparse.Namespace, client: CaratflowClient, method: str) -> Any:
    job = getattr(client, method)(args.pricing_version, args.comment)
    if not args.watch:
        return job
    print(f"repricing job {job['job_id']} started", flush=True)
    return _watch(client, job["job_id"], 1.0)


def _watch(client: CaratflowClient, job_id: str, interval: float) -> Any:
    for kind, data in client.repricing_job_events(job_id, interval=interval):
        if kind == "progress":
            print(
                f"{data['status']:<11} {data['stage']:<8} version {data['pass_version']}  stones {data['stones']:,}"
                f" of {data['total'] or 0:,}  repriced {data['repriced']:,}  value delta {data['value_delta_cents']:,}"
                " cents",
                flush=True,
            )
        else:
            print(f"{kind}: {json.dumps(data)}", flush=True)
    return None


def _audit(args: argparse.Namespace, client: CaratflowClient) -> Any:
    return client.pricing_audit(
        version=args.pricing_version,
        action=args.action,
        actor=args.actor,
        since=args.since,
        until=args.until,
        before=args.before,
        limit=args.limit,
    )


def _quote(args: argparse.Namespace, client: CaratflowClient) -> Any:
    stone = _load(args.stone) if args.stone else None
    return client.quote(diamond_id=args.diamond_id, stone=stone, pricing_version=args.pricing_version)
