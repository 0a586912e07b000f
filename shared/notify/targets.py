"""Webhook targets (the NOTIFY_WEBHOOKS setting) and the event kinds they subscribe to.

A webhook URL is a credential: Slack and Teams put the token in the URL itself. It is held as a
SecretStr, never written to the database (a delivery names its target), and logged only redacted.
"""

from __future__ import annotations

import hashlib
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

EventKind = Literal["run_succeeded", "run_partially_succeeded", "run_failed", "consolidation_failed", "auth_blocked"]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
WebhookFormat = Literal["slack", "teams"]

# Plain http only to this machine (tests, a local receiver); anywhere else the token would travel in clear.
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def redact_url(url: str) -> str:
    """scheme://host/… and a short fingerprint: enough to tell targets apart, nothing to call them with."""
    parts = urlsplit(url)
    fingerprint = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{parts.scheme}://{parts.hostname}/…#{fingerprint}"


class WebhookTarget(BaseModel):
    """One webhook: where (secret), in which format, and which event kinds it receives."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Names the target in deliveries and logs.")
    url: SecretStr
    format: WebhookFormat
    events: tuple[EventKind, ...] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr) -> SecretStr:
        # The messages never repeat the value: it is the secret.
        parts = urlsplit(url.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise ValueError("url must use https (plain http is allowed to 127.0.0.1 only)")
        return url

    @property
    def redacted(self) -> str:
        return redact_url(self.url.get_secret_value())

    def receives(self, event_kind: str) -> bool:
        return event_kind in self.events
