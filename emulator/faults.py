"""Which fault, if any, a request suffers: one seeded uniform draw per request.

The draw is taken from one `random.Random` seeded from the config seed, so a sequential client sees
the same sequence of faults on every run.
"""

from __future__ import annotations

import random
import threading
from enum import StrEnum

from emulator.config import FaultSettings


class Fault(StrEnum):
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    MALFORMED_JSON = "malformed_json"
    GRAPHQL_ERROR = "graphql_error"
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - a fault's name, not a secret


SERVER_ERROR_STATUSES = (500, 502, 503)


class FaultInjector:
    """Current fault settings (replaceable at run time) and the seeded draws made from them."""

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        self._settings = settings
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def replace(self, settings: FaultSettings) -> None:
        self._settings = settings

    def applies_to(self, kind: str) -> bool:
        return kind == "data" or (kind == "auth" and self._settings.faults_on_auth)

    def draw(self) -> Fault | None:
        settings = self._settings
        with self._lock:
            roll = self._rng.random()
        for name, rate in settings.exclusive_rates().items():
            if roll < rate:
                return Fault(name)
            roll -= rate
        return None

    def latency_seconds(self) -> float:
        settings = self._settings
        if settings.latency_ms <= 0 and settings.latency_jitter_ms <= 0:
            return 0.0
        with self._lock:
            jitter = self._rng.uniform(0.0, settings.latency_jitter_ms)
        return (settings.latency_ms + jitter) / 1000.0

    def server_error_status(self) -> int:
        with self._lock:
            return self._rng.choice(SERVER_ERROR_STATUSES)
