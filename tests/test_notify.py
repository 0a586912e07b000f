"""Notifications: events recorded with their status change, delivered to a real HTTP server on 127.0.0.1
with retries, backoff and Retry-After, claimed once across deliverers, never logging a webhook URL."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from ports import free_port

from shared.config import ConfigError, load_settings
from shared.notify import store
from shared.notify.deliver import deliver_due
from shared.notify.events import record_auth_blocked, record_event
from shared.notify.targets import EVENT_KINDS, WebhookTarget
from shared.planning.partitions import Partition
from shared.sync import runs
from shared.sync.finalize import finalize_run

TOKEN = "XoXb-SECRET-T0KEN-9f8e7d"  # what a Slack or Teams URL carries; must never leave the settings


class Webhook:
    """A webhook receiver on 127.0.0.1: answers each request from a script (then 200), records them all."""

    def __init__(self, delay: float = 0.0) -> None:
        self.requests: list[dict] = []
        self.script: deque[tuple[int, dict[str, str], str]] = deque()
        self.delay = delay
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner._lock:
                    owner.requests.append({"path": self.path, "body": body, "at": time.monotonic()})
                    status, headers, text = owner.script.popleft() if owner.script else (200, {}, "ok")
                time.sleep(owner.delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads `requests`."""

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}/{TOKEN}"

    def answer(self, *responses: tuple[int, dict[str, str], str]) -> None:
        self.script.extend(responses)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    receiver = Webhook()
    yield receiver
    receiver.close()


def target(receiver: Webhook, name: str = "ops", fmt: str = "slack", events: tuple[str, ...] | None = None):
    return WebhookTarget(
        name=name,
        url=receiver.url(name),
        format=fmt,
        events=events or ("run_succeeded", "run_partially_succeeded", "run_failed", "consolidation_failed"),
    )


@pytest.fixture
def notify_settings(settings):
    """The test's settings with fast retries and the given webhooks."""

    def make(*targets: WebhookTarget, **overrides):
        return settings.model_copy(
            update={
                "notify_webhooks": targets,
                "notify_backoff_base_seconds": 0.01,
                "notify_backoff_max_seconds": 0.05,
                "notify_timeout_seconds": 2.0,
                **overrides,
            }
        )

    return make


def record(database_url: str, event_kind: str = "run_succeeded", details: dict | None = None) -> int:
    with psycopg.connect(database_url) as conn:
        event_id = record_event(conn, event_kind, "run-x", details or {"feed": "nivoda-natural", "kind": "full"})
    assert event_id is not None
    return event_id


def deliver_until_settled(pool, settings, timeout: float = 10) -> None:
    """Run the deliverer until no delivery is pending or failing."""
    deadline = time.monotonic() + timeout
    while True:
        deliver_due(pool, settings)
        with pool.connection() as conn:
            open_ = conn.execute(
                "SELECT count(*) FROM notification_deliveries WHERE status IN ('pending', 'failed')"
            ).fetchone()[0]
        if open_ == 0:
            return
        assert time.monotonic() < deadline, "deliveries still open"
        time.sleep(0.02)


def deliveries(pool) -> list[dict]:
    with pool.connection() as conn:
        return store.list_deliveries(conn, limit=1000)


def attempts(pool, delivery_id: int) -> list[dict]:
    with pool.connection() as conn:
        return store.attempts_of(conn, delivery_id)


# --- delivery outcomes


def test_failing_twice_then_succeeding_is_delivered_once_with_three_attempts(
    pool, database_url, webhook, notify_settings
) -> None:
    settings = notify_settings(target(webhook))
    record(database_url)
    webhook.answer((500, {}, "boom"), (502, {}, "bad gateway"))
    deliver_until_settled(pool, settings)
    assert len(webhook.requests) == 3
    [delivery] = deliveries(pool)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 3, 200)
    assert delivery["delivered_at"] is not None
    tried = attempts(pool, delivery["delivery_id"])
    assert [(a["attempt_no"], a["status_code"], a["outcome"]) for a in tried] == [
        (1, 500, "retry"),
        (2, 502, "retry"),
        (3, 200, "delivered"),
    ]
    assert all(a["duration_ms"] is not None and a["started_at"].tzinfo for a in tried)
    deliver_due(pool, settings)  # nothing left: exactly once
    assert len(webhook.requests) == 3


def test_a_400_gives_up_at_once_visibly_and_retry_requeues_it(
    pool, database_url, webhook, notify_settings, caplog
) -> None:
    settings = notify_settings(target(webhook))
    record(database_url)
    webhook.answer((400, {}, "invalid_payload"))
    with caplog.at_level(logging.INFO):
        report = deliver_due(pool, settings)
    assert (report.given_up, len(webhook.requests)) == (1, 1)
    [delivery] = deliveries(pool)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("given_up", 1, 400)
    assert "invalid_payload" in delivery["last_error"]
    given_up = [r for r in caplog.records if r.levelno == logging.ERROR and "given up" in r.getMessage()]
    assert [r.delivery_id for r in given_up] == [delivery["delivery_id"]]
    with pool.connection() as conn:
        assert [d["delivery_id"] for d in store.list_deliveries(conn, status="given_up")] == [delivery["delivery_id"]]
        store.requeue(conn, delivery["delivery_id"])
        with pytest.raises(ValueError, match="only given_up"):
            store.requeue(conn, delivery["delivery_id"])
    deliver_until_settled(pool, settings)
    [delivery] = deliveries(pool)
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)


def test_retryable_failures_give_up_after_max_attempts(pool, database_url, webhook, notify_settings) -> None:
    settings = notify_settings(target(webhook), notify_max_attempts=3)
    record(database_url)
    webhook.answer(*[(503, {}, "unavailable")] * 10)
    deliver_until_settled(pool, settings)
    [delivery] = deliveries(pool)
    assert (delivery["status"], delivery["attempts"], len(webhook.requests)) == ("given_up", 3, 3)
    assert "after 3 attempts" in delivery["last_error"]


def test_a_429_retry_after_is_honoured(pool, database_url, webhook, notify_settings) -> None:
    settings = notify_settings(target(webhook))
    record(database_url)
    webhook.answer((429, {"Retry-After": "1"}, "slow down"))
    deliver_due(pool, settings)
    [delivery] = deliveries(pool)
    [first] = attempts(pool, delivery["delivery_id"])
    assert delivery["status"] == "failed"
    # The backoff alone would be 10-50 ms; the server asked for a second.
    assert delivery["next_attempt_at"] - first["started_at"] >= timedelta(seconds=1)
    deliver_due(pool, settings)
    assert len(webhook.requests) == 1  # not due yet
    deliver_until_settled(pool, settings)
    assert len(webhook.requests) == 2
    assert webhook.requests[1]["at"] - webhook.requests[0]["at"] >= 0.95
    assert deliveries(pool)[0]["status"] == "delivered"


def test_connection_errors_are_retried(pool, database_url, webhook, notify_settings) -> None:
    closed = WebhookTarget(name="down", url=f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}", format="teams",
                           events=("run_succeeded",))  # fmt: skip
    settings = notify_settings(closed, notify_max_attempts=2)
    record(database_url)
    deliver_until_settled(pool, settings)
    [delivery] = deliveries(pool)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("given_up", 2, None)
    assert "ConnectError" in delivery["last_error"]


def test_two_deliverers_never_send_the_same_delivery(pool, database_url, notify_settings) -> None:
    receiver = Webhook(delay=0.02)
    try:
        settings = notify_settings(target(receiver))
        for n in range(20):
            record(database_url, details={"feed": "nivoda-natural", "kind": "full", "n": n})
        with pool.connection() as conn:
            store.fan_out(conn, settings.notify_webhooks)  # both deliverers then find the same 20 due
        errors: list[BaseException] = []
        delivered: list[int] = []
        start = threading.Barrier(2)

        def deliverer() -> None:
            try:
                start.wait(5)
                delivered.append(deliver_due(pool, settings).delivered)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread, which fails on it
                errors.append(exc)

        threads = [threading.Thread(target=deliverer) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert len(delivered) == 2
        assert min(delivered) > 0  # both really worked at once
        assert sum(delivered) == 20
        sent = [request["body"]["blocks"][-1]["elements"][0]["text"] for request in receiver.requests]
        assert len(sent) == len(set(sent)) == 20  # each event's footer once: no double send
        assert {d["status"] for d in deliveries(pool)} == {"delivered"}
        with pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM notification_attempts").fetchone() == (20,)
    finally:
        receiver.close()


# --- fan-out


def test_each_event_fans_out_once_to_the_targets_that_subscribe(pool, database_url, webhook, notify_settings) -> None:
    everything = target(webhook, "all")
    failures = target(webhook, "failures", events=("run_failed",))
    settings = notify_settings(everything, failures)
    record(database_url, "run_succeeded")
    record(database_url, "run_failed", {"feed": "f", "kind": "full", "error": "x"})
    deliver_until_settled(pool, settings)
    deliver_until_settled(pool, settings)  # a second pass enqueues nothing again
    pairs = sorted((d["event_kind"], d["target"]) for d in deliveries(pool))
    assert pairs == [("run_failed", "all"), ("run_failed", "failures"), ("run_succeeded", "all")]
    assert len(webhook.requests) == 3


def test_a_target_removed_from_the_settings_gives_up_visibly(pool, database_url, webhook, notify_settings) -> None:
    record(database_url)
    with pool.connection() as conn:
        store.fan_out(conn, [target(webhook, "old")])
    deliver_due(pool, notify_settings(target(webhook, "new")))
    [delivery] = [d for d in deliveries(pool) if d["target"] == "old"]
    assert delivery["status"] == "given_up"
    assert "no longer in NOTIFY_WEBHOOKS" in delivery["last_error"]


# --- formats


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


# --- secrets


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
        ).fetchone()[0]
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


# --- events recorded with the status change they report


def _prepared_run(conn: psycopg.Connection, fetched: int, failed: int = 0) -> uuid.UUID:
    run = runs.create_run(
        conn,
        run_id=uuid.uuid4(),
        feed=f"feed-{uuid.uuid4().hex[:8]}",  # one active run per feed: each run its own feed
        kind="full",
        trigger="cli",
        instance_id=None,
        as_of=datetime.now(UTC),
    )
    count = fetched + failed
    runs.save_plan(conn, run.run_id, [Partition(partition_no=n, dpc_from=n * 10, dpc_to=n * 10 + 10,
                                                expected_count=0) for n in range(count)], {})  # fmt: skip
    conn.execute(
        "UPDATE partitions SET status = CASE WHEN partition_no < %s THEN 'fetched' ELSE 'dead_lettered' END "
        "WHERE run_id = %s",
        (fetched, run.run_id),
    )
    conn.commit()
    return run.run_id


def _events(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT event_kind, subject, details FROM notification_events ORDER BY event_id").fetchall()


def test_finalize_records_the_run_outcome_in_its_transaction(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        complete, partial, undone = _prepared_run(conn, 2), _prepared_run(conn, 2, failed=1), _prepared_run(conn, 1)
        summary = finalize_run(conn, complete)
        finalize_run(conn, complete)  # finalized again: no second event
        finalize_run(conn, partial)
        with conn.transaction(force_rollback=True):  # the surrounding transaction rolls back
            finalize_run(conn, undone)
        conn.commit()
        events = _events(conn)
        status = conn.execute("SELECT status FROM runs WHERE run_id = %s", (undone,)).fetchone()[0]
    assert [(kind, subject) for kind, subject, _ in events] == [
        ("run_succeeded", str(complete)),
        ("run_partially_succeeded", str(partial)),
    ]
    assert events[0][2] == json.loads(json.dumps(summary))
    assert status == "fetching"  # neither the outcome nor its event stayed


def test_a_failure_records_one_event_naming_what_failed(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        consolidating, fetching = _prepared_run(conn, 1), _prepared_run(conn, 1)
        runs.set_status(conn, consolidating, "consolidating")
        runs.set_status(conn, consolidating, "failed", error="consolidation kept failing")
        runs.set_status(conn, consolidating, "failed", error="and again")  # a repeated activity
        runs.set_status(conn, fetching, "failed", error="only 0 of 1 partitions fetched")
        conn.commit()
        events = _events(conn)
    assert [(kind, subject) for kind, subject, _ in events] == [
        ("consolidation_failed", str(consolidating)),
        ("run_failed", str(fetching)),
    ]
    assert events[0][2]["error"] == "consolidation kept failing"
    assert events[0][2]["previous_status"] == "consolidating"


def test_auth_blocked_is_recorded_once_per_caller_per_hour(database_url: str) -> None:
    async def block(subject: str, at: datetime) -> int | None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await record_auth_blocked(conn, subject, {"reason": "bad signature"}, now=at)

    at = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    first = asyncio.run(block("ip:203.0.113.7", at))
    again = asyncio.run(block("ip:203.0.113.7", at + timedelta(minutes=30)))
    other = asyncio.run(block("key:ck0123456789abcdef", at))
    later = asyncio.run(block("ip:203.0.113.7", at + timedelta(hours=1)))
    assert first is not None
    assert other is not None
    assert later is not None
    assert again is None


def test_event_kinds_agree_between_python_and_the_schema(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for kind in EVENT_KINDS:
            record_event(conn, kind, "x", {})  # the table's CHECK takes every kind
        with pytest.raises(ValueError, match="unknown event kind"):
            record_event(conn, "run_exploded", "x", {})  # type: ignore[arg-type]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO notification_events (event_kind, subject) VALUES ('run_exploded', 'x')")


def test_a_synced_run_notifies_its_webhook(run_sync, pool, webhook, notify_settings) -> None:
    summary = run_sync("nivoda-natural")
    deliver_until_settled(pool, notify_settings(target(webhook, "ops", "teams")))
    [request] = webhook.requests
    card = request["body"]["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Sync succeeded: nivoda-natural (full)"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["run_id"] == summary["run_id"]
    assert facts["fetched"] == str(summary["fetched"])


# --- the command line


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

    def caratflow(*args: str) -> subprocess.CompletedProcess:
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


def test_the_delivery_timer_sends_what_is_due(database_url, pool, webhook, notify_settings, monkeypatch) -> None:
    import function_app
    from activities import deps
    from local_host.host import indexed

    monkeypatch.setattr(deps, "_current", None)  # restored after the test
    deps.use(notify_settings(target(webhook)), pool)
    record(database_url)
    timer = next(f for f in indexed(function_app.app) if f.get_function_name() == "timer_notify_delivery")
    timer.get_user_function()(None)
    assert len(webhook.requests) == 1
    assert deliveries(pool)[0]["status"] == "delivered"
