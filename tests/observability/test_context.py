"""The pieces without a run: log context stamping, exporter choice, derived orchestration context,
and a timer firing's own correlation id."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from typing import Any, cast

import pytest
from fake_orchestration import FakeOrchestrationContext, Fakes

from shared import logs
from shared.telemetry import carry, configure, exporter_choice, orchestration_trace


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Kept]:
    logs.install_correlation()
    handler = Kept()
    logger = logging.getLogger("caratflow.test.context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def test_context_fields_are_stamped_and_a_call_may_still_pass_them(kept: Kept) -> None:
    log = logging.getLogger("caratflow.test.context")
    with logs.correlated(correlation_id="c-1", run_id="run-a"):
        log.info("stamped")
        # What shared/sync does: passing run_id itself must neither raise nor lose its value.
        log.info("explicit", extra={"run_id": "run-b", "partition_no": 3})
    log.info("outside")
    # Any: a stamped record answers its context fields as attributes (shared.logs.ContextRecord).
    stamped, explicit, outside = cast(list[Any], kept.records)
    assert (stamped.correlation_id, stamped.run_id) == ("c-1", "run-a")
    assert (explicit.correlation_id, explicit.run_id) == ("c-1", "run-b")
    assert not hasattr(outside, "correlation_id")
    line = json.loads(logs.JsonFormatter().format(explicit))
    assert line | {"ts": None} == {
        "ts": None,
        "level": "info",
        "logger": "caratflow.test.context",
        "message": "explicit",
        "process": os.getpid(),
        "correlation_id": "c-1",
        "run_id": "run-b",
        "partition_no": 3,
    }


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "none"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_METRICS_EXPORTER": "console"}, "console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "console"}, "otlp"),
        (
            {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x", "OTEL_EXPORTER_OTLP_ENDPOINT": "h"},
            "azure-monitor",
        ),
        ({"OTEL_SDK_DISABLED": "true", "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}, "disabled"),
    ],
)
def test_the_environment_picks_the_exporter(env: dict[str, str], expected: str) -> None:
    assert exporter_choice(env) == expected


def test_configure_is_once_per_process() -> None:
    assert configure() is configure()


def context_of(instance_id: str, request: dict[str, Any]) -> FakeOrchestrationContext:
    """An orchestration context holding `request` as its input, as telemetry reads it."""
    return FakeOrchestrationContext(Fakes(activities={}), request, instance_id)


def test_an_orchestrations_trace_context_is_the_same_in_every_replay() -> None:
    trigger = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    request = {"run_id": "r-1", "correlation_id": "c-9", "traceparent": trigger}
    first, again = context_of("sync-x", request), context_of("sync-x", request)
    assert orchestration_trace(first) == orchestration_trace(again)
    passed = carry(first, {"run_id": "r-1"})
    assert passed["correlation_id"] == "c-9"
    assert passed["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")  # the trigger's trace
    assert passed["traceparent"] != trigger  # ...but this orchestration's own span
    assert carry(context_of("sync-x", {**request, "run_id": "r-2"}), {})["traceparent"] != passed["traceparent"]
    # Started without a trigger span (the CLI): a trace of its own, named by the same derivation.
    alone = orchestration_trace(context_of("sync-x", {"run_id": "r-1"}))
    assert alone.parent is None
    assert alone.correlation_id == format(alone.span.trace_id, "032x")


def test_each_timer_firing_has_its_own_correlation_id_and_trace() -> None:
    import function_app
    from local_host.host import indexed

    started: list[dict[str, Any]] = []

    class Client:
        async def get_status(self, instance_id: str) -> None:
            return None

        async def start_new(self, name: str, instance_id: str, client_input: dict[str, Any]) -> str:
            started.append(client_input)
            return instance_id

    timer = next(f for f in indexed(function_app.app) if f.get_function_name() == "timer_full_nivoda_natural")
    fire = timer.get_user_function().client_function  # the code under the durable client binding
    for _ in range(2):
        asyncio.run(fire(timer=None, client=Client()))
    first, second = started
    assert first["correlation_id"] != second["correlation_id"]
    assert first["trigger"] == "timer"
    assert first["traceparent"].split("-")[1] != second["traceparent"].split("-")[1]
    assert logs.correlation_id.get() is None  # nothing leaks out of a firing
