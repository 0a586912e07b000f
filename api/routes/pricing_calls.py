"""What every pricing route shares: the domain call on a connection of its own, the actor of a change, and
the domain's refusals as problem documents.

shared/pricing is synchronous (psycopg.Connection: one transaction per lifecycle step, taken with locks),
and the API's pool is async. So a route runs its domain call on a worker thread, on one connection opened
for that call (autocommit, as the pools' are) and closed after it. Pricing routes are an operator's, a few
per minute, so a connection per call costs little; the request's pooled connection only authenticated the
caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import psycopg

from api.auth import Principal
from api.problems import Problem
from api.state import ApiState
from shared.db.connect import connect
from shared.pricing import quotes, repricing, sets
from shared.pricing.audit import Actor
from shared.pricing.repository import NoActivePricing
from shared.pricing.rules import UnpricedStone

T = TypeVar("T")

PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"application/problem+json": {}}}
    for status, description in (
        (400, "Invalid request"),
        (401, "Unauthenticated"),
        (403, "Missing the pricing scope"),
        (404, "Unknown pricing version, job or stone"),
        (409, "Not allowed in the current state (a job is unfinished, the set is not a draft, ...)"),
        (412, "The draft changed since its revision in If-Match"),
        (422, "The rule set has errors (`findings`), or no rule prices the stone"),
        (429, "Rate limited"),
        (503, "No durable client, or database unavailable (Retry-After)"),
    )
}


def actor(caller: Principal) -> Actor:
    """Who makes a change: the API key's client and key id."""
    return Actor.api_key(caller.client_id, caller.key_id)


async def call(state: ApiState, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`action(conn, *args, **kwargs)` on a worker thread, with the domain's refusals as problems."""

    def run() -> T:
        with connect(state.settings, state.database_url, name="caratflow-api-pricing", autocommit=True) as conn:
            return action(conn, *args, **kwargs)

    try:
        return await anyio.to_thread.run_sync(run)
    except Exception as exc:
        problem = refusal(exc)
        if problem is None:
            raise
        raise problem from None


def refusal(exc: Exception) -> Problem | None:
    """The problem document for a refusal of shared/pricing; None for anything else (a bug, an outage)."""
    if isinstance(exc, sets.InvalidRuleSet):
        return Problem(
            422,
            "invalid-rule-set",
            "The rule set has errors",
            str(exc),
            "Fix the rules `findings` names (validate the draft again), then retry.",
            extra={"findings": [finding.model_dump(mode="json") for finding in exc.findings]},
        )
    if isinstance(exc, sets.RevisionConflict):
        return Problem(412, "revision-conflict", "The draft changed", str(exc), "Read the draft again, then edit it.")
    if isinstance(exc, sets.LifecycleError):
        return Problem(409, "conflict", "Not allowed now", str(exc), _LIFECYCLE_HINT)
    if isinstance(exc, repricing.RepricingConflict):
        return Problem(409, "conflict", "Not allowed now", exc.detail, exc.hint)
    if isinstance(exc, sets.NoSuchVersion):
        return unknown_version(str(exc))
    if isinstance(exc, repricing.UnknownJob):
        return Problem(404, "unknown-job", "Unknown job", str(exc), "List jobs: GET /api/v1/pricing/jobs.")
    if isinstance(exc, quotes.UnknownStone):
        return Problem(404, "unknown-stone", "Unknown stone", str(exc), "Quote a stone by a diamond_id search shows.")
    if isinstance(exc, NoActivePricing):
        return Problem(409, "no-active-version", "No active version", str(exc), "Name a pricing_version to quote.")
    if type(exc) is LookupError:  # shared/pricing/repository.py: no such version (never a KeyError, a bug)
        return unknown_version(str(exc))
    if isinstance(exc, sets.CommentRequired):
        return Problem(400, "comment-required", "A comment is required", str(exc), "Say why in `comment`.")
    if isinstance(exc, UnpricedStone):
        return Problem(422, "unpriced-stone", "No rule prices the stone", str(exc), "Add a catch-all rule.")
    if isinstance(exc, OverflowError):
        return Problem(422, "price-out-of-range", "Price out of range", str(exc), "Quote a stone of a lower cost.")
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return Problem(409, "busy", "Busy", "The pricing versions are locked by other work.", "Retry in a few seconds.")
    return None


def job_view(job: repricing.Job) -> dict[str, Any]:
    """A job as the routes show it: its row, what it is doing, whether it has ended."""
    return {**job.as_dict(), "stage": job.stage, "finished": job.finished}


def unknown_version(detail: str) -> Problem:
    return Problem(404, "unknown-version", "Unknown pricing version", detail, "List them: GET /api/v1/pricing/sets.")


_LIFECYCLE_HINT = (
    "Only a draft is edited, deleted or activated, only a retired set is reverted to, and one activation runs at"
    " a time: see GET /api/v1/pricing/sets and /api/v1/pricing/jobs."
)
