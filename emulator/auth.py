"""Login and opaque bearer tokens with a fixed lifetime."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable


class TokenStore:
    """Issues random tokens and remembers when each expires."""

    def __init__(
        self, username: str, password: str, ttl_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._username = username
        self._password = password
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def login(self, username: str, password: str) -> str | None:
        """A new token, or None for wrong credentials."""
        # Compare both in constant time so a caller cannot probe which one was wrong.
        user_ok = secrets.compare_digest(username.encode(), self._username.encode())
        password_ok = secrets.compare_digest(password.encode(), self._password.encode())
        if not (user_ok and password_ok):
            return None
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}  # forget expired tokens
            self._expiry[token] = now + self.ttl_seconds
        return token

    def is_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and self._clock() < expiry

    def expire_all(self) -> int:
        """Forget every token (as a supplier-side key rotation would); returns how many."""
        with self._lock:
            count = len(self._expiry)
            self._expiry.clear()
        return count
