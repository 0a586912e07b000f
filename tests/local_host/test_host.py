"""The local host drives real orchestrators through the SDK's replay engine, with state in PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from local_host.client import InstanceExists, LocalDurableClient
from local_host.host import Functions, LocalHost

app = df.DFApp()
calls: Counter[str] = Counter()
calls_lock = threading.Lock()


def _count(key: str) -> int:
    with calls_lock:
        calls[key] += 1
        return calls[key]


@app.activity_trigger(input_name="payload")
def double(payload: dict[str, int]) -> int:
    return payload["n"] * 2


@app.activity_trigger(input_name="payload")
def flaky(payload: dict[str, Any]) -> str:
    attempt = _count(payload["key"])
    if attempt <= payload["fail_times"]:
        raise RuntimeError(f"flaky failure {attempt}")
    return f"ok after {attempt}"


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    numbers = context.get_input()
    assert numbers is not None
    context.set_custom_status({"stage": "fanning out", "count": len(numbers)})
    results = yield context.task_all([context.call_activity("double", {"n": n}) for n in numbers])
    context.set_custom_status({"stage": "done"})
    return sum(results)


RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=20, max_number_of_attempts=3)


@app.orchestration_trigger(context_name="context")
def with_retries(context: df.DurableOrchestrationContext):
    spec = context.get_input()
    assert spec is not None
    tasks = [
        context.call_activity_with_retry("flaky", RETRY, {"key": f"{spec['key']}-{i}", "fail_times": f})
        for i, f in enumerate(spec["fails"])
    ]
    try:
        return (yield context.task_all(tasks))
    except Exception as failure:  # noqa: BLE001 - the SDK surfaces activity failures as plain Exception
        return {"failed": str(failure)[:200]}


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    batches = context.get_input()
    assert batches is not None
    results = yield context.task_all([context.call_sub_orchestrator("fan_out", batch) for batch in batches])
    timer_at = context.current_utc_datetime + timedelta(milliseconds=50)
    yield context.create_timer(timer_at)
    return results


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    state = context.get_input()
    assert state is not None
    value = yield context.call_activity("double", {"n": state["value"]})
    if state["rounds"] > 1:
        context.continue_as_new({"value": value, "rounds": state["rounds"] - 1})
        return None
    return value


@app.orchestration_trigger(context_name="context")
def broken(context: df.DurableOrchestrationContext):
    yield context.call_activity("double", {"n": 1})
    raise ValueError("orchestrator bug")


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    return "woke"


FUNCTIONS = Functions.from_app(app)  # an app indexes once: get_functions() refuses a second call


@pytest.fixture
def host(pool):
    host = LocalHost(pool, FUNCTIONS, activity_workers=3, poll_interval=0.02)
    with host:
        yield host


@pytest.fixture
def client(pool, host) -> LocalDurableClient:
    return LocalDurableClient(pool, on_change=host.wake)


def test_fan_out_fan_in_with_custom_status(client: LocalDurableClient) -> None:
    instance = client.start_new("fan_out", client_input=list(range(20)))
    status = client.wait_for_completion(instance, timeout=30)
    assert status.runtime_status == "Completed"
    assert status.output == 2 * sum(range(20))
    assert status.custom_status == {"stage": "done"}


def test_retries_until_success(client: LocalDurableClient) -> None:
    instance = client.start_new("with_retries", client_input={"key": "r1", "fails": [0, 1, 2]})
    status = client.wait_for_completion(instance, timeout=30)
    assert status.output == ["ok after 1", "ok after 2", "ok after 3"]


def test_retries_exhausted_surface_to_the_orchestrator(client: LocalDurableClient) -> None:
    instance = client.start_new("with_retries", client_input={"key": "r2", "fails": [0, 5]})
    status = client.wait_for_completion(instance, timeout=30)
    assert status.runtime_status == "Completed"
    assert "flaky failure 3" in status.output["failed"]
    assert calls["r2-1"] == 3  # max_number_of_attempts, not one more


def test_sub_orchestrations_and_timers(client: LocalDurableClient) -> None:
    instance = client.start_new("parent", client_input=[[1, 2], [3], [4, 5, 6]])
    status = client.wait_for_completion(instance, timeout=30)
    assert status.output == [6, 6, 30]
    children = [s for s in client.list_instances() if s.parent_instance_id == instance]
    assert len(children) == 3
    assert all(child.runtime_status == "Completed" for child in children)


def test_continue_as_new(client: LocalDurableClient) -> None:
    instance = client.start_new("counter", client_input={"value": 1, "rounds": 4})
    status = client.wait_for_completion(instance, timeout=30)
    assert status.output == 16


def test_orchestrator_failure_is_recorded(client: LocalDurableClient) -> None:
    instance = client.start_new("broken", client_input=None)
    status = client.wait_for_completion(instance, timeout=30)
    assert status.runtime_status == "Failed"
    assert status.error is not None
    assert "orchestrator bug" in status.error


def test_terminate_and_singleton_ids(client: LocalDurableClient) -> None:
    instance = client.start_new("sleeper", instance_id="only-one")
    with pytest.raises(InstanceExists):
        client.start_new("sleeper", instance_id="only-one")
    assert client.terminate(instance, "operator said so") == ["only-one"]
    status = client.get_status(instance)
    assert status.runtime_status == "Terminated"
    assert status.error == "operator said so"
    client.start_new("fan_out", instance_id="only-one", client_input=[1])  # a finished id can be reused
    assert client.wait_for_completion("only-one", timeout=30).output == 2


def test_purge_history_deletes_only_finished_instances_in_the_window(client: LocalDurableClient, pool) -> None:
    from datetime import UTC, datetime, timedelta

    from azure.durable_functions import OrchestrationRuntimeStatus as Status

    parent = client.start_new("parent", client_input=[[1], [2, 3]])  # with sub-orchestrations
    assert client.wait_for_completion(parent, timeout=30).runtime_status == "Completed"
    broken = client.start_new("broken", client_input=None)
    assert client.wait_for_completion(broken, timeout=30).runtime_status == "Failed"
    with pool.connection() as conn:
        conn.execute(
            "UPDATE durable_instances SET created_at = now() - interval '40 days' WHERE instance_id = ANY(%s)",
            ([parent, broken],),
        )
        # A running instance of the same age stays, whatever the filter says.
        conn.execute(
            """INSERT INTO durable_instances (instance_id, name, execution_id, status, created_at)
               VALUES ('still-running', 'counter', gen_random_uuid(), 'Running', now() - interval '40 days')"""
        )
        children = conn.execute(
            "SELECT count(*) FROM durable_instances WHERE parent_instance_id = %s", (parent,)
        ).fetchone()[0]
    assert children == 2
    cutoff = datetime.now(UTC) - timedelta(days=30)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    only_failed = client.purge_instance_history_by(epoch, cutoff, [Status.Failed])
    assert only_failed.instances_deleted == 1
    purged = client.purge_instance_history_by(epoch, cutoff, [Status.Completed, Status.Running])
    assert purged.instances_deleted == 1  # the parent; Running is never purged; children go with it
    with pool.connection() as conn:
        left = {row[0] for row in conn.execute("SELECT instance_id FROM durable_instances")}
        history = conn.execute("SELECT count(*) FROM durable_history WHERE instance_id = %s", (parent,)).fetchone()[0]
    assert "still-running" in left
    assert not {parent, broken} & left
    assert not [i for i in left if i != "still-running"]  # the sub-orchestrations went with their parent
    assert history == 0
    with pytest.raises(ValueError, match="created_time_from"):
        client.purge_instance_history_by(None, cutoff)  # type: ignore[arg-type]  # refusing None is the test
