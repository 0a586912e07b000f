"""A process-wide cache of feed tokens, refreshed a margin before they expire.

Concurrent fetchers in one process share a token, and only one of them logs in when it runs out
(single flight under a lock). The lifetime comes from the token's own `exp` claim when it is a JWT,
else from the configured TTL (Nivoda's FAQ says 6 h; a staging JWT carried 24 h).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Entry:
    token: str
    expires_at: float  # unix seconds


class TokenCache:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}

    def get(self, key: tuple[str, str], login: Callable[[], str], *, ttl: float, margin: float) -> str:
        """A valid token for `key`, logging in (once, for all waiting threads) when needed."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._clock() >= entry.expires_at - margin:
                token = login()
                entry = _Entry(token, jwt_expiry(token) or self._clock() + ttl)
                self._entries[key] = entry
            return entry.token

    def invalidate(self, key: tuple[str, str], token: str) -> None:
        """Forget `token` if it is still the cached one (another thread may have refreshed it)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.token == token:
                del self._entries[key]


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT, or None when the token is opaque or carries none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


PROCESS_TOKENS = TokenCache()
