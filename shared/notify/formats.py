"""A Message laid out for each webhook format: Slack incoming webhooks and Teams (Adaptive Card)."""

from __future__ import annotations

from typing import Any

from shared.notify.messages import Message
from shared.notify.targets import WebhookFormat

_SLACK_EMOJI = {"good": ":white_check_mark:", "warning": ":warning:", "attention": ":rotating_light:"}
_TEAMS_COLOR = {"good": "Good", "warning": "Warning", "attention": "Attention"}


def payload(webhook_format: WebhookFormat, message: Message) -> dict[str, Any]:
    return slack(message) if webhook_format == "slack" else teams(message)


def slack(message: Message) -> dict[str, Any]:
    """`text` is what notifications and old clients show; `blocks` is the message itself."""
    blocks: list[dict[str, Any]] = [
        # Slack caps a header at 150 characters.
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": f"{_SLACK_EMOJI[message.severity]} {message.title}"[:150]}},
    ]  # fmt: skip
    if message.text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(message.text)}})
    if message.facts:
        fields = [{"type": "mrkdwn", "text": f"*{key}*\n{_slack_escape(value)}"} for key, value in message.facts]
        blocks.append({"type": "section", "fields": fields})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(message.footer)}]})
    text = f"{message.title}: {message.text}" if message.text else message.title
    return {"text": _slack_escape(text), "blocks": blocks}


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links and mentions; an error message must not become one.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams(message: Message) -> dict[str, Any]:
    """A message with one Adaptive Card: what Teams Workflows webhooks (and the old connectors) accept."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": _TEAMS_COLOR[message.severity]},
    ]  # fmt: skip
    if message.text:
        body.append({"type": "TextBlock", "text": message.text, "wrap": True})
    if message.facts:
        body.append({"type": "FactSet", "facts": [{"title": key, "value": value} for key, value in message.facts]})
    body.append({"type": "TextBlock", "text": message.footer, "isSubtle": True, "size": "Small", "wrap": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }
