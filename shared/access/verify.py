"""Checking a signed request against a key: timestamp both ways, then every active secret.

Every failure is an `AuthFailure` with a reason for the logs; callers answer all of them with the
same generic 401, so a caller learns nothing about which check failed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from caratflow_client import signing


class AuthFailure(Exception):
    """The request is not authenticated. `reason` is for logs only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ActiveSecret:
    """A secret version that may sign requests now, with the hash issued for it."""

    version: str
    value: str
    sha256: bytes


def check_timestamp(timestamp: int, now: datetime, tolerance_seconds: int) -> None:
    skew = timestamp - now.timestamp()
    if skew > tolerance_seconds:
        raise AuthFailure(f"timestamp {int(skew)} s in the future")
    if -skew > tolerance_seconds:
        raise AuthFailure(f"timestamp {int(-skew)} s old")


def check_signature(signature: signing.Signature, message: str, secrets: Sequence[ActiveSecret]) -> str:
    """Return the version of the secret that signed `message`; compare against all of them in constant time."""
    matched: str | None = None
    for secret in secrets:
        # A store answer that does not hash to what was issued is never trusted.
        issued = hmac.compare_digest(hashlib.sha256(secret.value.encode()).digest(), secret.sha256)
        expected = signing.compute(secret.value, message)
        if hmac.compare_digest(expected, signature.signature) and issued and matched is None:
            matched = secret.version
    if matched is None:
        raise AuthFailure("signature matches no active secret" if secrets else "key has no active secret")
    return matched
