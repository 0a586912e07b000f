"""Slack and Teams payloads: each in its platform's shape, with the event's text escaped."""

from __future__ import annotations

from notifications import deliver_until_settled, record
from webhooks import target


def test_slack_and_teams_payloads_have_their_shapes(pool, database_url, webhook, notify_settings) -> None:
    settings = notify_settings(target(webhook, "slack", "slack"), target(webhook, "teams", "teams"))
    record(
        database_url,
        "run_failed",
        {"run_id": "r1", "feed": "nivoda-natural", "kind": "full", "error": "feed said <b>no</b> & left"},
    )
    deliver_until_settled(pool, settings)
    bodies = {request["path"].split("/")[2]: request["body"] for request in webhook.requests}

    slack = bodies["slack"]
    assert isinstance(slack["text"], str)
    assert "Sync failed: nivoda-natural (full)" in slack["text"]
    assert [block["type"] for block in slack["blocks"]] == ["header", "section", "section", "context"]
    assert slack["blocks"][0]["text"]["type"] == "plain_text"
    assert "&lt;b&gt;no&lt;/b&gt; &amp; left" in slack["blocks"][1]["text"]["text"]  # no stray links or mentions
    assert {"type": "mrkdwn", "text": "*feed*\nnivoda-natural"} in slack["blocks"][2]["fields"]

    teams = bodies["teams"]
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0] == {
        "type": "TextBlock",
        "text": "Sync failed: nivoda-natural (full)",
        "weight": "Bolder",
        "size": "Medium",
        "wrap": True,
        "color": "Attention",
    }
    [facts] = [element for element in card["body"] if element["type"] == "FactSet"]
    assert {"title": "run_id", "value": "r1"} in facts["facts"]
