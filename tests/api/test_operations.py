"""Operator endpoints end to end on the local host: the API served with the local host's durable
client, a feed emulator with injected faults, the `caratflow admin` CLI over the signed API."""

from __future__ import annotations

import json
import logging
import time
import uuid

import httpx
import psycopg
import pytest
from operator_api import admin_cli, wait_for

from caratflow_client import CaratflowClient
from emulator.config import FaultSettings


def test_start_watch_fail_replay_and_purge_through_the_api(ops, feed, monkeypatch, capsys) -> None:
    # Every page of the cheapest price band fails: those partitions end dead-lettered.
    feed.faults.replace(FaultSettings(failing_dpc_from=[0]))
    started = ops.start_run("nivoda-natural")
    run_id = started["run_id"]
    with pytest.raises(httpx.HTTPStatusError) as second:
        ops.start_run("nivoda-natural")  # the feed's run is active: a second start is refused
    assert second.value.response.status_code == 409
    assert second.value.response.headers["content-type"] == "application/problem+json"

    events = list(ops.run_events(run_id, interval=0.1))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "end"
    assert kinds.count("progress") >= 2  # the stream showed the run moving, not just its end
    statuses = [data["run"]["status"] for kind, data in events if kind == "progress"]
    assert "fetching" in statuses or "consolidating" in statuses
    fetched = [data["totals"]["rows_fetched"] for kind, data in events if kind == "progress"]
    assert fetched == sorted(fetched)

    shown = ops.run(run_id)
    assert shown["run"]["status"] == "partially_succeeded"
    dead = [p for p in shown["partitions"] if p["status"] == "dead_lettered"]
    assert dead
    assert shown["totals"]["by_status"]["dead_lettered"] == len(dead)
    letters = ops.dead_letters(run_id=run_id, status="open")
    assert sorted(letter["partition_no"] for letter in letters) == sorted(p["partition_no"] for p in dead)

    # The CLI drives the same endpoints: replay through it once the feed is healthy again.
    feed.faults.replace(FaultSettings())
    code, out = admin_cli(ops, monkeypatch, capsys, "replay", run_id)
    assert code == 0
    assert json.loads(out)["partitions"] == len(dead)
    retried = wait_for(ops, run_id, ("succeeded",))
    assert retried["totals"]["by_status"] == {"fetched": retried["totals"]["partitions"]}
    assert {letter["status"] for letter in ops.dead_letters(run_id=run_id)} == {"replayed"}

    with pytest.raises(httpx.HTTPStatusError) as again:
        ops.replay_run(run_id)  # nothing left to replay
    assert again.value.response.status_code == 409
    code, out = admin_cli(ops, monkeypatch, capsys, "runs", "--feed", "nivoda-natural")
    assert code == 0
    assert [run["run_id"] for run in json.loads(out)] == [run_id]


def test_dead_letter_purge_then_replay(ops, feed, database_url) -> None:
    feed.faults.replace(FaultSettings(failing_dpc_from=[0]))
    first = ops.start_run("nivoda-natural")["run_id"]
    wait_for(ops, first, ("partially_succeeded",))
    (purged_letter,) = ops.dead_letters(run_id=first, status="open")
    purged = ops.purge_dead_letter(purged_letter["dead_letter_id"])
    assert purged["status"] == "purged"
    for attempt in (ops.purge_dead_letter, ops.replay_dead_letter):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            attempt(purged_letter["dead_letter_id"])  # a purged letter is neither purged again nor replayed
        assert refused.value.response.status_code == 409
    with pytest.raises(httpx.HTTPStatusError) as unknown:
        ops.purge_dead_letter(str(uuid.uuid4()))
    assert unknown.value.response.status_code == 404

    second = ops.start_run("nivoda-natural")["run_id"]
    wait_for(ops, second, ("partially_succeeded",))
    (letter,) = ops.dead_letters(run_id=second, status="open")
    feed.faults.replace(FaultSettings())
    replay = ops.replay_dead_letter(letter["dead_letter_id"])
    assert replay["partitions"] == 1
    wait_for(ops, second, ("succeeded",))
    with psycopg.connect(database_url) as conn:
        statuses: dict[str, str] = dict(
            conn.execute("SELECT dead_letter_id::text, status FROM dead_letters").fetchall()
        )
    assert statuses == {purged_letter["dead_letter_id"]: "purged", letter["dead_letter_id"]: "replayed"}


def test_cancel_stops_a_running_run(ops, feed, database_url) -> None:
    feed.faults.replace(FaultSettings(latency_ms=200))  # slow pages keep the run busy while we cancel it
    run_id = ops.start_run("nivoda-natural")["run_id"]
    wait_for(ops, run_id, ("fetching",))
    cancelled = ops.cancel_run(run_id, reason="operator test")
    assert cancelled["status"] == "cancelled"
    assert cancelled["error"] == "operator test"
    with pytest.raises(httpx.HTTPStatusError) as twice:
        ops.cancel_run(run_id)
    assert twice.value.response.status_code == 409
    # The feed is free again: a new run starts (the cancelled one no longer holds the feed).
    feed.faults.replace(FaultSettings())
    assert ops.start_run("nivoda-natural")["run_id"] != run_id


def test_operator_routes_need_the_admin_scope(api, client, catalogue) -> None:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs()
    assert refused.value.response.status_code == 403


def test_without_a_durable_client_starting_is_a_503(api, issue_key) -> None:
    admin = issue_key("operator", ["admin"])
    with CaratflowClient(api.url, admin.key_id, admin.secret) as client:
        with pytest.raises(httpx.HTTPStatusError) as unavailable:
            client.start_run("nivoda-natural")
        assert unavailable.value.response.status_code == 503
        assert client.runs() == []  # reading runs needs only the database


def test_sse_stream_is_cut_by_max_seconds_with_a_timeout_event(ops, feed) -> None:
    feed.faults.replace(FaultSettings(latency_ms=200))
    run_id = ops.start_run("nivoda-natural")["run_id"]
    events = list(ops.run_events(run_id, interval=0.1, max_seconds=1))
    assert events[-1] == ("timeout", {"run_id": run_id, "reconnect": True})
    assert ops.cancel_run(run_id)["status"] == "cancelled"


def test_resume_finishes_a_run_whose_orchestration_stopped_in_consolidation(ops, feed, database_url) -> None:
    run_id = ops.start_run("nivoda-natural")["run_id"]
    done = wait_for(ops, run_id, ("succeeded",))
    with pytest.raises(httpx.HTTPStatusError) as finished:
        ops.resume_run(run_id)  # a finished run has nothing to resume
    assert finished.value.response.status_code == 409
    # What a lost orchestration leaves behind: the row still says consolidating, stones still pending.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE runs SET status = 'consolidating', finished_at = NULL, summary = NULL WHERE run_id = %s",
            (run_id,),
        )
        pending = conn.execute(
            """INSERT INTO raw_pending (feed, stone_id, payload_hash)
               SELECT feed, stone_id, payload_hash FROM raw_stones WHERE feed = 'nivoda-natural' LIMIT 25
               ON CONFLICT DO NOTHING"""
        ).rowcount
    assert pending == 25
    resumed = ops.resume_run(run_id)
    assert resumed["instance_id"].startswith(f"resume-{run_id}")
    after = wait_for(ops, run_id, ("succeeded",))
    assert after["totals"]["consolidation_backlog"] == 0
    assert after["run"]["summary"]["partitions"] == done["run"]["summary"]["partitions"]
    assert after["run"]["summary"]["failed_partitions"] == 0


def test_an_http_started_run_carries_the_request_correlation_id_to_every_activity(ops, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    response = ops.http.post(
        "/api/v1/runs", json={"feed": "nivoda-natural"}, headers={"X-Correlation-Id": "op-start-0042"}
    )
    assert response.status_code == 202
    assert response.headers["x-correlation-id"] == "op-start-0042"
    wait_for(ops, response.json()["run_id"], ("succeeded",))
    # One of the host's threads logs an activity's end after the run row says succeeded: let it.
    time.sleep(0.5)
    ours = [r for r in caplog.records if getattr(r, "correlation_id", None) == "op-start-0042"]
    activities = {r.activity for r in ours if hasattr(r, "activity")}
    assert {"create_run", "plan_run", "fetch_partition", "consolidate_feed", "finalize_run"} <= activities
    assert {"run started", "run planned", "run finished"} <= {
        r.getMessage() for r in ours if r.name == "orchestrators.sync_run"
    }
    assert {getattr(r, "run_id", None) for r in ours if hasattr(r, "activity")} == {response.json()["run_id"]}


def test_a_consolidation_that_fails_fails_the_run_visibly_and_resumes(ops, database_url) -> None:
    # A real database refusal: every stone consolidation writes breaks this constraint.
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE diamonds ADD CONSTRAINT test_refuse_all CHECK (carats < 0) NOT VALID")
    run_id = ops.start_run("nivoda-natural")["run_id"]
    failed = wait_for(ops, run_id, ("failed",), timeout=180)
    assert failed["run"]["error"].startswith("consolidation failed: ")
    with psycopg.connect(database_url) as conn:
        events = conn.execute("SELECT event_kind FROM notification_events WHERE subject = %s", (run_id,)).fetchall()
        assert events == [("consolidation_failed",)]
        conn.execute("ALTER TABLE diamonds DROP CONSTRAINT test_refuse_all")
    ops.resume_run(run_id)
    resumed = wait_for(ops, run_id, ("succeeded",))
    assert resumed["totals"]["consolidation_backlog"] == 0
    assert resumed["run"]["summary"]["catalogued"] > 0
