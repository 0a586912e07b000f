"""Server-sent progress of something that runs for a while (a sync run, a repricing job), until it ends.

One loop for every such stream, so that they all speak alike: `progress` whenever what a look shows
changes, `end` once it has ended, `timeout` after max_seconds (the client reconnects to go on), a comment
every 15 quiet seconds so proxies keep an idle stream open, and no more looks once the client has gone.
Under the Functions host the HTTP worker buffers a response unless HTTP streaming is enabled, so there
the events arrive together when the stream ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from api.encoding import encode

QUIET_SECONDS = 15


@dataclass(frozen=True)
class Look:
    """What one look found: the progress to show, and the final status once it has ended."""

    shown: Any
    ended: str | None


def event_stream(
    request: Request,
    look: Callable[[], Awaitable[Look | None]],
    identity: dict[str, str],
    *,
    interval: float,
    max_seconds: float,
) -> StreamingResponse:
    """A streaming response of `look`'s progress; `identity` (e.g. {"run_id": ...}) names it in `end`
    and `timeout`. A look that finds nothing (deleted meanwhile) ends the stream with status "deleted"."""
    return StreamingResponse(
        _events(request, look, identity, interval, max_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request,
    look: Callable[[], Awaitable[Look | None]],
    identity: dict[str, str],
    interval: float,
    max_seconds: float,
) -> AsyncIterator[bytes]:
    deadline = time.monotonic() + max_seconds
    last, sent, quiet_since = b"", 0, time.monotonic()
    while True:
        seen = await look()
        if seen is None:
            yield _event("end", sent + 1, encode({**identity, "status": "deleted"}))
            return
        snapshot = encode(seen.shown)
        if snapshot != last:
            sent += 1
            last, quiet_since = snapshot, time.monotonic()
            yield _event("progress", sent, snapshot)
        if seen.ended is not None:
            yield _event("end", sent + 1, encode({**identity, "status": seen.ended}))
            return
        if time.monotonic() >= deadline:
            yield _event("timeout", sent + 1, encode({**identity, "reconnect": True}))
            return
        if time.monotonic() - quiet_since > QUIET_SECONDS:
            quiet_since = time.monotonic()
            yield b": still running\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(interval)


def _event(kind: str, number: int, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\nid: " + str(number).encode() + b"\ndata: " + data + b"\n\n"
