"""Delivery to a real HTTP server on 127.0.0.1: retries with backoff and Retry-After, giving up visibly,
claimed once across deliverers, fanned out once per subscribing target."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from notifications import attempts, deliver_until_settled, deliveries, record
from ports import free_port
from webhooks import TOKEN, Webhook, target

from shared.notify import store
from shared.notify.deliver import deliver_due
from shared.notify.targets import WebhookTarget


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
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in tried] == [
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
