"""A TTL cache in front of any secret store: one backend read per key per TTL, errors never kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.secrets.base import SecretStore


@dataclass
class _Flight:
    """One backend read in progress; threads asking for the same key wait on it instead of calling again."""

    done: threading.Event = field(default_factory=threading.Event)
    value: str | None = None
    error: BaseException | None = None


class CachedSecretStore:
    """A SecretStore that remembers each (name, version) read for `ttl_seconds`.

    Concurrent misses of one key make a single backend call. Errors are never cached. A version disabled
    through this object is forgotten at once; other processes keep their copy for up to `ttl_seconds`,
    which is therefore the bound on how long a disabled secret may still be honoured elsewhere.
    """

    def __init__(self, store: SecretStore, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must not be negative")
        self.store = store
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], tuple[str, float]] = {}  # key -> (value, expires at)
        self._flights: dict[tuple[str, str], _Flight] = {}

    def peek(self, name: str, version: str) -> str | None:
        """The cached value when fresh, else None; never calls the backend, so never blocks on I/O.

        An async caller (the API) reads through this first and only hops to a thread for `get` on a
        miss: a thread round trip per request cost the API a sixth of its CPU (bench/README.md).
        """
        with self._lock:
            cached = self._values.get((name, version))
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        return None

    def get(self, name: str, version: str) -> str:
        key = (name, version)
        with self._lock:
            cached = self._values.get(key)
            if cached is not None and self._clock() < cached[1]:
                return cached[0]
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if leader:
            return self._fetch(key, flight)
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.value is not None
        return flight.value

    def _fetch(self, key: tuple[str, str], flight: _Flight) -> str:
        try:
            value = self.store.get(*key)
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            return value
        finally:
            with self._lock:
                # A create/disable while this read was in flight dropped the flight: its result may be stale,
                # so it is handed to the threads that asked already but not kept.
                if self._flights.get(key) is flight:
                    del self._flights[key]
                    if flight.error is None and flight.value is not None and self.ttl_seconds > 0:
                        self._store(key, flight.value)
            flight.done.set()

    def _store(self, key: tuple[str, str], value: str) -> None:
        now = self._clock()
        # Sweep expired entries here (misses are at most one per key per TTL) so the cache stays bounded
        # by the keys in use, not by every key ever read.
        for stale in [k for k, (_, expires) in self._values.items() if expires <= now]:
            del self._values[stale]
        self._values[key] = (value, now + self.ttl_seconds)

    def _forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._flights.pop(key, None)

    def create_version(self, name: str, value: str) -> str:
        version = self.store.create_version(name, value)
        self._forget((name, version))
        return version

    def disable_version(self, name: str, version: str) -> None:
        try:
            self.store.disable_version(name, version)
        finally:
            # Even a failed disable may have reached the store; re-reading is the safe side.
            self._forget((name, version))

    def ping(self) -> None:
        """Reach the backend itself, past the cache (readiness: api/readiness.py)."""
        self.store.ping()

    def close(self) -> None:
        """Close the backend if it holds connections."""
        close = getattr(self.store, "close", None)
        if close is not None:
            close()
