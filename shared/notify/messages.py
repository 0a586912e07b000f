"""What a notification says: a title, a line of text and a few facts, from an event's details.

Formats (formats.py) only lay this out; the wording lives here, once for every webhook format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Severity = Literal["good", "warning", "attention"]

# The facts shown per event kind, in order; absent ones are skipped. Other kinds show every scalar detail.
_FACTS = {
    "run_succeeded": ("run_id", "feed", "kind", "partitions", "fetched", "new", "changed", "delisted", "seconds"),
    "run_partially_succeeded": (
        "run_id", "feed", "kind", "partitions", "failed_partitions", "fetched", "new", "changed", "seconds",
    ),
    "run_failed": ("run_id", "feed", "kind", "previous_status"),
    "consolidation_failed": ("run_id", "feed", "kind", "previous_status"),
}  # fmt: skip
MAX_FACTS = 10  # Slack shows at most 10 fields in a section
MAX_VALUE = 300


@dataclass(frozen=True)
class Message:
    title: str
    text: str
    facts: list[tuple[str, str]]
    severity: Severity
    footer: str


def message_for(
    event_id: int, event_kind: str, subject: str, details: dict[str, Any], occurred_at: datetime
) -> Message:
    title, text, severity = _wording(event_kind, subject, details)
    keys = _FACTS.get(event_kind) or [key for key, value in details.items() if not isinstance(value, dict | list)]
    facts = [(key, _short(details[key])) for key in keys if details.get(key) is not None][:MAX_FACTS]
    footer = f"caratflow · {event_kind} · event {event_id} · {occurred_at.isoformat(timespec='seconds')}"
    return Message(title, text, facts, severity, footer)


def _wording(event_kind: str, subject: str, d: dict[str, Any]) -> tuple[str, str, Severity]:
    run = f"{d.get('feed', '?')} ({d.get('kind', '?')})"
    if event_kind == "run_succeeded":
        text = (
            f"{d.get('fetched', 0)} stones fetched: {d.get('new', 0)} new, {d.get('changed', 0)} changed, "
            f"{d.get('delisted', 0)} delisted, in {d.get('seconds', '?')} s."
        )
        return f"Sync succeeded: {run}", text, "good"
    if event_kind == "run_partially_succeeded":
        text = (
            f"{d.get('failed_partitions', '?')} of {d.get('partitions', '?')} partitions failed; the rest is "
            f"catalogued. Replay them with `caratflow dead-letters replay {d.get('run_id', subject)}`."
        )
        return f"Sync partially succeeded: {run}", text, "warning"
    if event_kind == "run_failed":
        return f"Sync failed: {run}", _short(d.get("error") or "no error recorded"), "attention"
    if event_kind == "consolidation_failed":
        text = f"{_short(d.get('error') or 'no error recorded')} The fetched rows stay queued for the next run."
        return f"Consolidation failed: {run}", text, "attention"
    if event_kind == "auth_blocked":
        return f"Caller blocked: {subject}", "Blocked after repeated failed authentications.", "warning"
    return f"{event_kind}: {subject}", "", "warning"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
