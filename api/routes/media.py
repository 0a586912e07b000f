"""`/api/media/{token}`: a stone's image or video, fetched from the supplier and streamed through.

Partners never see a supplier host: search answers link here (shared/catalogue/media.py, docs/media.md).
The route is unsigned, since an `<img src>` cannot sign a request; the token's MAC makes links
unforgeable and its expiry bounds sharing. A bad, edited or expired token is 404.

The URL fetched comes from the feed, which is untrusted (OWASP API7 SSRF, API10), so:
- it is parsed once, by httpx, and that parsed URL is both checked and fetched (no two parsers to disagree);
- http or https, no user info, and a host on the allow-list: the configured feed endpoint's host and
  port, or SUPPLIER_MEDIA_DOMAINS (or a subdomain) on the scheme's default port;
- no redirects followed, no proxy or .netrc from the environment, timeouts of a few seconds;
- a 200 answer only, `image/*` (except SVG, which can carry script) or `video/mp4`, no content
  encoding, at most MAX_BYTES (a body of unknown length is read up to the cap before we answer);
- of the supplier's headers only Content-Type, Content-Length, ETag and Last-Modified are passed on.
Anything else is 502 `media-unavailable`, which never names the supplier's host (the log does).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from api.deps import AppState
from api.problems import Problem
from shared.access.server_keys import InvalidToken
from shared.catalogue import media, search

log = logging.getLogger("caratflow.api")
router = APIRouter(tags=["media"])

# Supplier media hosts beyond the feed endpoint's own: each domain and its subdomains, default port only.
SUPPLIER_MEDIA_DOMAINS = ("nivoda.net",)
MAX_BYTES = 20 * 1024 * 1024
TIMEOUT = httpx.Timeout(connect=3.0, read=5.0, write=5.0, pool=3.0)
# Below media.TOKEN_SECONDS, so a cache never serves a file longer than its link would.
CACHE_SECONDS = 6 * 3600
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MEDIA_TYPE = re.compile(r"^(image/[a-z0-9][a-z0-9.+-]{0,62}|video/mp4)$")
_LENGTH = re.compile(r"^[0-9]{1,15}$")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file", "content": {"image/jpeg": {}, "video/mp4": {}}},
    404: {"description": "Unknown, edited or expired link", "content": {"application/problem+json": {}}},
    502: {"description": "The supplier did not deliver the file", "content": {"application/problem+json": {}}},
}


class Refused(Exception):
    """The supplier's URL or answer is not one we pass on; the message is for the log only."""


def allowed(url: httpx.URL, feed_endpoint: str) -> bool:
    """Whether `url` is on a supplier media host (see the module docstring)."""
    default = _DEFAULT_PORTS.get(url.scheme)
    if default is None or url.userinfo or not url.host:
        return False
    host, port = url.host.lower(), url.port or default
    feed = httpx.URL(feed_endpoint)
    if (host, port) == (feed.host.lower(), feed.port or _DEFAULT_PORTS.get(feed.scheme)):
        return True
    return port == default and any(host == d or host.endswith(f".{d}") for d in SUPPLIER_MEDIA_DOMAINS)


@router.get(
    media.PATH_PREFIX + "{token}",
    response_class=Response,
    responses=_RESPONSES,
    summary="A stone's image or video, by a link from a search answer (unsigned)",
)
async def media_file(state: AppState, token: str) -> Response:
    now = time.time()
    try:
        grant = media.read(await state.server_keys(), token, now)
    except InvalidToken:
        raise _unknown() from None
    # Not `api.deps.Connection`: that one would be held while the supplier answers, for seconds.
    async with state.connection() as conn:
        row = await (await conn.execute(search.media_url(grant.column), (grant.diamond_id,))).fetchone()
    if row is None or row[0] is None:
        raise _unknown()
    max_age = min(CACHE_SECONDS, grant.expires_at - int(now))
    try:
        return await _relay(row[0], state.settings.nivoda_endpoint, max_age)
    except Refused as exc:
        log.warning(
            "media refused", extra={"diamond_id": str(grant.diamond_id), "kind": grant.kind, "reason": str(exc)}
        )
        raise _unavailable() from None


async def _relay(source: str, feed_endpoint: str, max_age: int) -> Response:
    try:
        url = httpx.URL(source)
    except httpx.InvalidURL as exc:
        raise Refused(f"not a URL: {exc}") from exc
    if not allowed(url, feed_endpoint):
        raise Refused(f"host not allowed: {url.scheme}://{url.host}:{url.port}")
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False)
        )
        headers = {"Accept": "image/*, video/mp4", "Accept-Encoding": "identity"}
        try:
            upstream = await stack.enter_async_context(client.stream("GET", url, headers=headers))
        except httpx.HTTPError as exc:
            raise Refused(f"fetch failed from {url.host}: {exc!r}") from exc
        passed = _passed_headers(upstream, max_age)
        if "content-length" not in passed:
            return Response(await _read_capped(upstream), headers=passed)
        body = _stream(upstream, int(passed["content-length"]), stack.pop_all())
    return StreamingResponse(body, headers=passed)


def _passed_headers(upstream: httpx.Response, max_age: int) -> dict[str, str]:
    if upstream.status_code != 200:
        raise Refused(f"status {upstream.status_code}")
    media_type = upstream.headers.get("content-type", "").split(";")[0].strip().lower()
    if not _MEDIA_TYPE.match(media_type) or media_type == "image/svg+xml":
        raise Refused(f"content type {media_type!r}")
    if upstream.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise Refused("encoded body")
    passed = {"content-type": media_type, "cache-control": f"public, max-age={max_age}"}
    length = upstream.headers.get("content-length")
    if length is not None:
        if not _LENGTH.match(length) or int(length) > MAX_BYTES:
            raise Refused(f"content length {length[:32]!r}")
        passed["content-length"] = str(int(length))
    for name in ("etag", "last-modified"):
        value = upstream.headers.get(name)
        if value and len(value) <= 256 and value.isascii() and value.isprintable():
            passed[name] = value
    return passed


async def _read_capped(upstream: httpx.Response) -> bytes:
    body = bytearray()
    try:
        async for chunk in upstream.aiter_raw():
            body += chunk
            if len(body) > MAX_BYTES:
                raise Refused(f"body beyond {MAX_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise Refused(f"body failed: {exc!r}") from exc
    return bytes(body)


async def _stream(upstream: httpx.Response, length: int, cleanup: contextlib.AsyncExitStack) -> AsyncIterator[bytes]:
    # Headers are sent by now: a failure here can only cut the body short, which the caller sees
    # against Content-Length; it surfaces (and is logged) rather than being hidden.
    async with cleanup:
        sent = 0
        async for chunk in upstream.aiter_raw():
            sent += len(chunk)
            if sent > length:
                raise Refused("body longer than its Content-Length")
            yield chunk


def _unknown() -> Problem:
    return Problem(
        404,
        "unknown-media",
        "Unknown media",
        "This media link is not one the API issued, was altered, or has expired.",
        "Fetch the stone or search again for a fresh link.",
    )


def _unavailable() -> Problem:
    return Problem(
        502,
        "media-unavailable",
        "Media unavailable",
        "The supplier did not deliver this file in a form the API passes on.",
        "Try again later; the stone's record is unaffected.",
    )
