"""Retry options with exponential backoff.

azure-functions-durable 1.x's RetryOptions carries only the first interval and the attempt count;
the Durable extension also reads `backoffCoefficient` and `maxRetryIntervalInMilliseconds` from the
same JSON, so this subclass adds them (the local host honours them the same way).
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df


class BackoffRetryOptions(df.RetryOptions):
    def __init__(
        self,
        *,
        first_retry_interval_ms: int,
        max_attempts: int,
        backoff_coefficient: float = 2.0,
        max_retry_interval_ms: int = 300_000,
    ) -> None:
        super().__init__(first_retry_interval_ms, max_attempts)
        if backoff_coefficient < 1:
            raise ValueError("backoff_coefficient must be >= 1")
        self.backoff_coefficient = backoff_coefficient
        self.max_retry_interval_ms = max_retry_interval_ms

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "backoffCoefficient": self.backoff_coefficient,
            "maxRetryIntervalInMilliseconds": self.max_retry_interval_ms,
        }
