"""Pricing rule sets (pricing scope): list, get, create, copy, edit and delete drafts, validate, preview,
activate and revert, and quotes.

Thin over shared/pricing/sets.py (the lifecycle and its rules), validate.py, preview.py and quotes.py.
Activating or reverting begins the activation and its repricing job in one transaction, then starts the
job's orchestration through the durable client (shared/pricing/repricing_starts.py): 202 with the job's
Location. A start that fails ends the job as failed before it changed anything, so the activation is
closed and the version can be activated afresh.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Header, Path, Query, Response

from api.deps import AppState, DurableClient, PricingCaller
from api.encoding import JsonResponse
from api.problems import Problem
from api.routes.pricing_calls import PROBLEMS, actor, call, job_view
from api.routes.pricing_models import INT_MAX, ActivationBody, CopyBody, EditBody, QuoteBody, RuleSetBody
from shared.pricing import quotes, repricing, sets
from shared.pricing.audit import Actor
from shared.pricing.preview import preview
from shared.pricing.repricing_starts import start_repricing
from shared.pricing.validate import has_errors, validate
from shared.text import SafeText

router = APIRouter(prefix="/api/v1/pricing", tags=["pricing"])
VersionPath = Annotated[int, Path(ge=1, le=INT_MAX)]


def _location(version: int) -> dict[str, str]:
    return {"Location": f"/api/v1/pricing/sets/{version}"}


@router.get("/sets", responses=PROBLEMS, summary="Rule sets, newest first")
async def get_sets(state: AppState, caller: PricingCaller, status: sets.Status | None = None) -> Response:
    found = await call(state, sets.list_sets, status)
    return JsonResponse({"data": [summary.model_dump(mode="json") for summary in found]})


@router.post("/sets", status_code=201, responses=PROBLEMS, summary="Create a draft from scratch")
async def post_set(state: AppState, caller: PricingCaller, body: RuleSetBody) -> Response:
    created = await call(state, sets.create, actor(caller), body)
    return JsonResponse(created.model_dump(mode="json"), status_code=201, headers=_location(created.pricing_version))


@router.get("/sets/{version}", responses=PROBLEMS, summary="One rule set with its defaults and rules")
async def get_set(state: AppState, caller: PricingCaller, version: VersionPath) -> Response:
    return JsonResponse((await call(state, sets.get, version)).model_dump(mode="json"))


@router.post("/sets/{version}/copy", status_code=201, responses=PROBLEMS, summary="Copy any version into a new draft")
async def post_copy(
    state: AppState, caller: PricingCaller, version: VersionPath, body: CopyBody | None = None
) -> Response:
    note = (body or CopyBody()).note
    copied = await call(state, sets.copy, version, actor(caller), note)
    return JsonResponse(copied.model_dump(mode="json"), status_code=201, headers=_location(copied.pricing_version))


@router.put("/sets/{version}", responses=PROBLEMS, summary="Replace a draft's note, defaults and rules")
async def put_set(
    state: AppState,
    caller: PricingCaller,
    version: VersionPath,
    body: EditBody,
    if_match: Annotated[str | None, Header(max_length=40, description="the draft's `revision` when last read")] = None,
) -> Response:
    content = sets.RuleSetContent(note=body.note, defaults=body.defaults, rules=body.rules)
    edited = await call(
        state, sets.edit, version, content, actor(caller), expected_revision=_revision(if_match), comment=body.comment
    )
    return JsonResponse(edited.model_dump(mode="json"))


def _revision(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isascii() or not text.isdigit() or int(text) > INT_MAX:
        raise Problem(
            400, "invalid-if-match", "Invalid If-Match", "If-Match is not a revision.", 'Send `"<revision>"`.'
        )
    return int(text)


@router.delete("/sets/{version}", responses=PROBLEMS, summary="Delete a draft (it stays in the audit trail)")
async def delete_set(
    state: AppState,
    caller: PricingCaller,
    version: VersionPath,
    comment: Annotated[SafeText, Query(max_length=2000)] = "",
) -> Response:
    await call(state, sets.delete_draft, version, actor(caller), comment=comment)
    return JsonResponse({"pricing_version": version, "deleted": True})


@router.get("/sets/{version}/validation", responses=PROBLEMS, summary="What is wrong with a set (errors, warnings)")
async def get_validation(state: AppState, caller: PricingCaller, version: VersionPath) -> Response:
    detail = await call(state, sets.get, version)
    findings = validate(detail.rule_set())
    return JsonResponse(
        {
            "pricing_version": version,
            "valid": not has_errors(findings),
            "findings": [finding.model_dump(mode="json") for finding in findings],
        }
    )


@router.get("/sets/{version}/preview", responses=PROBLEMS, summary="What a set would do to the listed catalogue")
async def get_preview(
    state: AppState,
    caller: PricingCaller,
    version: VersionPath,
    largest: Annotated[int, Query(ge=0, le=500)] = 20,
) -> Response:
    return JsonResponse((await call(state, preview, version, largest=largest)).model_dump(mode="json"))


@router.post(
    "/sets/{version}/activate", status_code=202, responses=PROBLEMS, summary="Activate a draft: a repricing job"
)
async def post_activate(
    state: AppState, caller: PricingCaller, client: DurableClient, version: VersionPath, body: ActivationBody
) -> Response:
    return await _activate(state, client, version, actor(caller), body.comment, "activate")


@router.post(
    "/sets/{version}/revert", status_code=202, responses=PROBLEMS, summary="Revert to a retired set: a repricing job"
)
async def post_revert(
    state: AppState, caller: PricingCaller, client: DurableClient, version: VersionPath, body: ActivationBody
) -> Response:
    return await _activate(state, client, version, actor(caller), body.comment, "revert")


async def _activate(
    state: AppState, client: Any, version: int, who: Actor, comment: str, expected: Literal["activate", "revert"]
) -> Response:
    job = await call(state, _begin, version, who, comment, expected)
    try:
        await start_repricing(client, job.job_id)
    except Exception as exc:
        await call(state, repricing.fail, job.job_id, f"its orchestration did not start: {exc}")
        raise
    return JsonResponse(job_view(job), status_code=202, headers={"Location": f"/api/v1/pricing/jobs/{job.job_id}"})


def _begin(
    conn: psycopg.Connection, version: int, who: Actor, comment: str, expected: Literal["activate", "revert"]
) -> repricing.Job:
    # repricing.begin, with the route's expectation: an activate route never reverts, nor the other way.
    with conn.transaction():
        return repricing.create_job(conn, sets.begin_activation(conn, version, who, comment, expected=expected))


@router.post("/quote", responses=PROBLEMS, summary="The price of one stone under a version (default: the active one)")
async def post_quote(state: AppState, caller: PricingCaller, body: QuoteBody) -> Response:
    if body.diamond_id is not None:
        quoted = await call(state, quotes.quote_diamond, body.diamond_id, body.pricing_version)
    else:
        assert body.stone is not None  # QuoteBody holds one or the other
        quoted = await call(state, quotes.quote, body.stone, body.pricing_version)
    return JsonResponse(quoted.model_dump(mode="json"))
