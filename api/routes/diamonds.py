"""`/api/v1/diamonds`: search, one stone, its price history."""

from __future__ import annotations

import time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.rows import dict_row

from api.auth import Principal
from api.deps import AppState, Connection, SearchCaller
from api.encoding import JsonResponse, encode
from api.problems import Problem
from api.schemas import DiamondFull, PriceHistory, SearchPage
from api.state import ApiState
from shared.catalogue import cursor as cursors
from shared.catalogue import media, search
from shared.catalogue.cursor import Position
from shared.catalogue.query import DiamondSearch

router = APIRouter(prefix="/api/v1/diamonds", tags=["diamonds"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"application/problem+json": {}}}
    for status, description in (
        (400, "Invalid parameters"),
        (401, "Unauthenticated"),
        (403, "Missing scope"),
        (404, "Unknown stone"),
        (429, "Rate limited"),
        (500, "Internal error"),
        (503, "Database unavailable (Retry-After)"),
    )
}


def _etag(principal: Principal, links_epoch: int | None) -> str:
    # Answers with media links change with the links' clock too, so a 304 never extends an old body's
    # links beyond their expiry (shared/catalogue/media.py).
    links = "" if links_epoch is None else f"-m{links_epoch}"
    return f'W/"ds-{principal.dataset_version}{links}"'


def _not_modified(request: Request, principal: Principal, links_epoch: int | None) -> Response | None:
    """304 when the caller already holds this dataset version's answer."""
    etag = _etag(principal, links_epoch)
    given = request.headers.get("if-none-match", "")
    if given and (given.strip() == "*" or etag in [tag.strip() for tag in given.split(",")]):
        return Response(status_code=304, headers=_cache_headers(request, principal, links_epoch))
    return None


def _cache_headers(request: Request, principal: Principal, links_epoch: int | None) -> dict[str, str]:
    # private: answers are per client; no-cache: revalidate every time, which costs one 304.
    return {
        "ETag": _etag(principal, links_epoch),
        "Cache-Control": "private, no-cache",
        "Vary": "Authorization",
        **getattr(request.state, "rate_limit_headers", {}),
    }


@router.get("", response_model=SearchPage, responses=_PROBLEMS, summary="Search the priced catalogue")
async def search_diamonds(
    request: Request,
    principal: SearchCaller,
    state: AppState,
    conn: Connection,
    query: Annotated[DiamondSearch, Query()],
) -> Response:
    now = time.time()
    links_epoch = media.epoch(now)
    if (cached := _not_modified(request, principal, links_epoch)) is not None:
        return cached
    limit = query.limit or state.settings.api_page_size_default
    if limit > state.settings.api_page_size_max:
        raise Problem(
            400,
            "invalid-request",
            "Invalid request",
            f"limit {limit} is above the maximum page size {state.settings.api_page_size_max}.",
            "Ask for a smaller page and follow next_cursor.",
        )
    try:
        after = cursors.decode(query, query.cursor, await state.server_keys(conn)) if query.cursor else None
    except cursors.InvalidCursor as exc:
        raise Problem(
            400,
            "invalid-cursor",
            "Invalid cursor",
            str(exc),
            "Pass next_cursor unchanged, with the same filters and sort it was issued for.",
        ) from None
    version = principal.dataset_version
    # The whole answer is a function of the dataset version and the query, so it is kept per version:
    # a storefront's popular first pages cost one query per catalogue change, not one per visitor.
    # Its media links expire, so it is also kept per tick of their clock: within the tick they were
    # minted in, they have at least media.TOKEN_SECONDS to run.
    answer_key = (version, f"{links_epoch}:{query.model_dump_json()}", limit)
    body = state.answers.get(answer_key)
    if body is None:
        body = await _search(state, conn, query, limit, after, version, now)
        state.answers.put(answer_key, body)
    return Response(body, media_type="application/json", headers=_cache_headers(request, principal, links_epoch))


async def _search(
    state: ApiState,
    conn: AsyncConnection,
    query: DiamondSearch,
    limit: int,
    after: Position | None,
    version: int,
    now: float,
) -> bytes:
    matches_key = (version, query.fingerprint())
    async with conn.cursor(row_factory=dict_row) as cur:
        expected = state.estimates.get(matches_key)
        if expected is None:
            statement, params = search.estimated_count(query)
            expected = search.plan_rows(await _value(cur, statement, params))
            state.estimates.put(matches_key, expected)
        statement, params = search.page(query, limit, after, expected)
        rows = await (await cur.execute(statement, params)).fetchall()
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = cursors.encode(query, last["sort_value"], last["diamond_id"], await state.server_keys(conn))
        elif after is None:
            # The first page holds every match: that is the exact count, no counting needed.
            state.counts.put(matches_key, (len(rows), False))
        count, estimated = await _count(state, cur, query, matches_key, expected)
    for row in rows:
        del row["sort_value"]
    media.attach_links(rows, await state.server_keys(conn), now, state.settings.api_public_url)
    body = {
        "data": rows,
        "page": {"limit": limit, "next_cursor": next_cursor, "count": count, "count_is_estimate": estimated},
        "dataset_version": version,
    }
    return encode(body)


async def _count(
    state: ApiState, cur: AsyncCursor[dict[str, Any]], query: DiamondSearch, key: tuple[int, str], expected: int
) -> tuple[int, bool]:
    """Exact up to the cap, the planner's estimate beyond it (`search.count_needed`); reused while the
    dataset version holds."""
    known = state.counts.get(key)
    if known is not None:
        return known
    cap = state.settings.api_count_cap
    if not search.count_needed(expected, cap):
        result = (expected, True)
    else:
        statement, params = search.capped_count(query, cap)
        exact = await _value(cur, statement, params)
        result = (exact, False) if exact <= cap else (max(expected, cap + 1), True)
    state.counts.put(key, result)
    return result


@router.get("/{diamond_id}", response_model=DiamondFull, responses=_PROBLEMS, summary="One stone, every field")
async def get_diamond(
    request: Request,
    principal: SearchCaller,
    state: AppState,
    conn: Connection,
    diamond_id: UUID,
    include_delisted: bool = False,
) -> Response:
    now = time.time()
    links_epoch = media.epoch(now)
    if (cached := _not_modified(request, principal, links_epoch)) is not None:
        return cached
    row = await _one(conn, search.by_id(), diamond_id)
    if row is None or (row["delisted_at"] is not None and not include_delisted):
        raise _unknown(diamond_id)
    media.attach_links([row], await state.server_keys(conn), now, state.settings.api_public_url)
    return JsonResponse(row, headers=_cache_headers(request, principal, links_epoch))


@router.get(
    "/{diamond_id}/price-history",
    response_model=PriceHistory,
    responses=_PROBLEMS,
    summary="Price changes of one stone, newest first",
)
async def price_history(request: Request, principal: SearchCaller, conn: Connection, diamond_id: UUID) -> Response:
    if (cached := _not_modified(request, principal, None)) is not None:
        return cached
    if await _one(conn, search.known(), diamond_id) is None:
        raise _unknown(diamond_id)
    async with conn.cursor(row_factory=dict_row) as cur:
        rows = await (await cur.execute(search.price_history(), (diamond_id,))).fetchall()
    body = {"diamond_id": diamond_id, "data": rows, "dataset_version": principal.dataset_version}
    return JsonResponse(body, headers=_cache_headers(request, principal, None))


async def _value(cur: AsyncCursor[dict[str, Any]], statement: sql.Composed, params: dict[str, Any]) -> Any:
    """The single value of a statement that answers one row of one column (a count, a plan)."""
    row = await (await cur.execute(statement, params)).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {statement!r}")
    (value,) = row.values()
    return value


async def _one(conn: AsyncConnection, statement: sql.SQL | sql.Composed, diamond_id: UUID) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        return await (await cur.execute(statement, (diamond_id,))).fetchone()


def _unknown(diamond_id: UUID) -> Problem:
    return Problem(
        404,
        "unknown-diamond",
        "Unknown diamond",
        f"No listed diamond has id {diamond_id}.",
        "Search again: the stone may have left the feed (include_delisted=true shows it).",
    )
