"""`caratflow notify`: list what gave up, retry it, deliver, show its attempts; never printing a webhook URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from notifications import record
from webhooks import TOKEN, target

from shared.notify.deliver import deliver_due


def test_cli_lists_given_up_deliveries_and_retries_them(pool, database_url, webhook, notify_settings, tmp_path) -> None:
    record(database_url)
    webhook.answer((404, {}, "no_service"))
    deliver_due(pool, notify_settings(target(webhook)))
    env = {
        **os.environ,
        "CARATFLOW_LOCAL_SETTINGS": str(tmp_path / "none.json"),
        "DATABASE_URL": database_url,
        "NOTIFY_WEBHOOKS": json.dumps([{"name": "ops", "url": webhook.url("ops"), "format": "slack",
                                        "events": ["run_succeeded"]}]),
        "NOTIFY_BACKOFF_BASE_SECONDS": "0",
    }  # fmt: skip

    def caratflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True, timeout=120
        )

    listed = caratflow("notify", "list", "--status", "given_up")
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["status"], row["last_status_code"], row["target"]) == ("given_up", 404, "ops")
    assert caratflow("notify", "retry", str(row["delivery_id"])).returncode == 0
    delivered = caratflow("notify", "deliver")
    assert delivered.returncode == 0, delivered.stderr
    assert "delivered=1" in delivered.stdout
    shown = caratflow("notify", "show", str(row["delivery_id"]))
    assert [json.loads(line)["outcome"] for line in shown.stdout.splitlines()[1:]] == ["given_up", "delivered"]
    assert TOKEN not in listed.stdout + listed.stderr + delivered.stdout + delivered.stderr + shown.stdout
