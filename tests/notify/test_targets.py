"""Webhook targets: read from NOTIFY_WEBHOOKS or refused naming the setting; a URL (it carries a secret)
never reaches logs or the database; a target no longer configured gives up visibly."""

from __future__ import annotations

import json
import logging
import traceback

import psycopg
import pytest
from notifications import deliver_until_settled, deliveries, record
from ports import free_port
from webhooks import TOKEN, target

from shared.config import ConfigError, load_settings
from shared.notify import store
from shared.notify.deliver import deliver_due
from shared.notify.targets import WebhookTarget


def test_a_target_removed_from_the_settings_gives_up_visibly(pool, database_url, webhook, notify_settings) -> None:
    record(database_url)
    with pool.connection() as conn:
        store.fan_out(conn, [target(webhook, "old")])
    deliver_due(pool, notify_settings(target(webhook, "new")))
    [delivery] = [d for d in deliveries(pool) if d["target"] == "old"]
    assert delivery["status"] == "given_up"
    assert "no longer in NOTIFY_WEBHOOKS" in delivery["last_error"]


def test_the_webhook_url_never_appears_in_logs_or_the_database(
    pool, database_url, webhook, notify_settings, caplog
) -> None:
    down = WebhookTarget(name="down", url=f"http://127.0.0.1:{free_port()}/x/{TOKEN}?sig={TOKEN}", format="slack",
                         events=("run_succeeded",))  # fmt: skip
    settings = notify_settings(target(webhook, "a"), target(webhook, "b"), target(webhook, "c"), down,
                               notify_max_attempts=2)  # fmt: skip
    # Claims go in delivery order: "a" gets an answer that echoes its URL, "b" a 400, "c" a 200.
    webhook.answer((500, {}, f"echo {webhook.url('a')}"), (400, {}, "nope"))
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    record(database_url)
    deliver_until_settled(pool, settings)
    logged = caplog.text + " ".join(json.dumps(record.__dict__, default=str) for record in caplog.records)
    assert "notification delivered" in logged
    assert "given up" in logged
    assert TOKEN not in logged
    assert "http://127.0.0.1" in logged  # the redacted form, so operators can still tell targets apart
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            """SELECT coalesce(string_agg(t::text, ' '), '') FROM (
                   SELECT d::text AS t FROM notification_deliveries d UNION ALL
                   SELECT a::text FROM notification_attempts a UNION ALL
                   SELECT e::text FROM notification_events e) rows"""
        ).fetchone()
    assert stored is not None
    stored = stored[0]
    assert "given_up" in stored
    assert TOKEN not in stored
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        f'{{"name": "ops", "url": "https://hooks.slack.com/{TOKEN}"}}',  # an object, not a list
        f'[{{"name": "ops", "url": "https://hooks.slack.com/{TOKEN}", "format": "email", "events": ["run_failed"]}}]',
        f'[{{"name": "ops", "url": "https://hooks.slack.com/{TOKEN}", "format": "slack", "events": ["sold"]}}]',
        f'[{{"name": "ops", "url": "http://hooks.slack.com/{TOKEN}", "format": "slack", "events": ["run_failed"]}}]',
        f'[{{"name": "ops", "url": "hooks.slack.com/{TOKEN}", "format": "slack", "events": ["run_failed"]}}]',
        f'[{{"name": "Ops!", "url": "https://x.test/{TOKEN}", "format": "slack", "events": ["run_failed"]}}]',
        '[{"name": "a", "url": "https://x.test/1", "format": "slack", "events": ["run_failed"]},'
        ' {"name": "a", "url": "https://x.test/2", "format": "teams", "events": ["run_failed"]}]',
    ],
)
def test_bad_notify_webhooks_is_a_config_error_naming_the_setting(value: str, monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_WEBHOOKS", value)
    with pytest.raises(ConfigError, match="NOTIFY_WEBHOOKS") as raised:
        load_settings()
    assert TOKEN not in "".join(traceback.format_exception(raised.value))


def test_notify_webhooks_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(
        "NOTIFY_WEBHOOKS",
        json.dumps([{"name": "ops", "url": f"https://hooks.slack.com/{TOKEN}", "format": "slack",
                     "events": ["run_failed", "auth_blocked"]}]),
    )  # fmt: skip
    [ops] = load_settings().notify_webhooks
    assert (ops.name, ops.format, ops.events) == ("ops", "slack", ("run_failed", "auth_blocked"))
    assert ops.url.get_secret_value().endswith(TOKEN)
    assert TOKEN not in ops.redacted
    assert ops.redacted.startswith("https://hooks.slack.com/")
