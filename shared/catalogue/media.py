"""Stone media for partners: caratflow links, never the supplier's.

The feed's media URLs name the supplier's host, and a partner who sees them can find (and buy
from) the supplier; docs/media.md records the decision. So partner records carry:

- `image_url`, `video_url`: `<api_public_url>/api/media/<token>` (root-relative without
  api_public_url). The API fetches the file from the supplier and streams it (api/routes/media.py).
- `has_v360`: the 360 viewer is an HTML application on the supplier's host; it cannot be proxied
  as one file, so partners learn only that it exists.
- no certificate URL: the feed's points at the supplier's host; `lab` + `certificate_number` is
  what the lab's own report check takes.

A token is a server-key token (`ServerKeys.seal`) around (diamond_id, kind, expiry): 21 bytes, about 52
characters. It is not secret (an `<img src>` cannot sign a request, so the media route is unsigned),
but only the API can make one, and its expiry bounds how long a link shared onwards keeps working.

Expiry runs on a coarse clock: `expiry(now)` is the end of the current clock hour plus
TOKEN_SECONDS, so every link issued within one hour is the same string (browsers and CDNs cache
one file per stone, not one per page view), and an answer cached for that hour (keyed by `epoch`,
api/routes/diamonds.py) holds links with at least TOKEN_SECONDS to run whenever it is served.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from shared.access.server_keys import InvalidToken, MalformedToken, ServerKeys

PURPOSE = b"media"
PATH_PREFIX = "/api/media/"  # the route (api/routes/media.py); answers under it may be embedded anywhere
# Kind -> the catalogue column holding the supplier's URL and the partner field carrying our link.
COLUMNS = {"image": "image_url", "video": "video_url"}
KINDS = tuple(COLUMNS)
# Module constants until shared/config.py (edited elsewhere meanwhile) takes them as settings.
TOKEN_SECONDS = 24 * 3600
CLOCK_SECONDS = 3600
_PAYLOAD_BYTES = 16 + 1 + 4  # uuid, kind, expiry in unix seconds (uint32: good until 2106)


@dataclass(frozen=True)
class Grant:
    """What a valid token lets its holder fetch, and until when."""

    diamond_id: uuid.UUID
    kind: str
    expires_at: int

    @property
    def column(self) -> str:
        return COLUMNS[self.kind]


class ExpiredToken(InvalidToken):
    """A token this API issued, past its expiry."""


def epoch(now: float) -> int:
    """The coarse clock's current tick; links minted within one tick are identical."""
    return int(now) // CLOCK_SECONDS


def expiry(now: float) -> int:
    return (epoch(now) + 1) * CLOCK_SECONDS + TOKEN_SECONDS


def mint(keys: ServerKeys, diamond_id: uuid.UUID, kind: str, expires_at: int) -> str:
    payload = diamond_id.bytes + bytes([KINDS.index(kind)]) + expires_at.to_bytes(4, "big")
    return keys.seal(PURPOSE, payload)


def read(keys: ServerKeys, token: str, now: float) -> Grant:
    """The grant a token carries; InvalidToken when it is not ours, ExpiredToken when it ran out."""
    payload = keys.unseal(PURPOSE, token)
    if len(payload) != _PAYLOAD_BYTES or payload[16] >= len(KINDS):
        raise MalformedToken("media payload")  # only a leaked key could sign one
    grant = Grant(uuid.UUID(bytes=payload[:16]), KINDS[payload[16]], int.from_bytes(payload[17:], "big"))
    if grant.expires_at <= now:
        raise ExpiredToken("expired")
    return grant


def link(base_url: str | None, token: str) -> str:
    return f"{(base_url or '').rstrip('/')}{PATH_PREFIX}{token}"


def attach_links(rows: list[dict[str, Any]], keys: ServerKeys, now: float, base_url: str | None) -> None:
    """Replace each row's media presence flags (selected by shared/catalogue/search.py) with links."""
    expires_at = expiry(now)
    for row in rows:
        for kind, field in COLUMNS.items():
            if field in row:
                row[field] = link(base_url, mint(keys, row["diamond_id"], kind, expires_at)) if row[field] else None
