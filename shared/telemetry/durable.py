"""Telemetry for durable functions: what an orchestrator may do on replay, and what an activity does.

An orchestrator (`@observed_orchestrator`, `carry`, `replay_safe`) never opens a live span and never
logs while replaying. Its trace context is a pure function of its instance id and input, so every
replay derives the same one: `carry` hands it to each activity and sub-orchestration it calls, and
the decorator records the orchestrator's span once, when it finishes without replaying, from the
history's own clock (`current_utc_datetime` at its start and at its end).

An activity (`@observed_activity`) runs live: it takes its correlation id and run id from its input
for the log context, and starts its span as a child of the `traceparent` in its input.

The context is duck-typed (`is_replaying`, `instance_id`, `get_input`, `current_utc_datetime`), so
this module needs nothing from Azure.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
import weakref
from collections.abc import Callable, Generator, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from shared import logs
from shared.telemetry.setup import configure
from shared.telemetry.tracing import derived_id, parent_context, parse_traceparent, record_span, traceparent, tracer


class OrchestrationContext(Protocol):
    """The parts of azure.durable_functions' DurableOrchestrationContext used here."""

    @property
    def instance_id(self) -> str: ...

    @property
    def is_replaying(self) -> bool: ...

    @property
    def current_utc_datetime(self) -> Any: ...

    def get_input(self) -> Any: ...


@dataclass(frozen=True)
class OrchestrationTrace:
    correlation_id: str
    run_id: str | None
    parent: SpanContext | None  # the trigger's span, or the calling orchestrator's
    span: SpanContext  # this orchestration's own (derived) span


# The SDK builds a new context for every episode, so a trace kept per context object is computed
# once per episode (not once per `carry` of a fan-out) and can never outlive its input.
_traces: weakref.WeakKeyDictionary[Any, OrchestrationTrace] = weakref.WeakKeyDictionary()


def orchestration_trace(context: OrchestrationContext) -> OrchestrationTrace:
    """This orchestration's trace context: the same in every replay."""
    if (known := _traces.get(context)) is None:
        known = _traces[context] = _derive(context)
    return known


def _derive(context: OrchestrationContext) -> OrchestrationTrace:
    request = context.get_input()
    fields = request if isinstance(request, dict) else {}
    parent = parse_traceparent(fields.get("traceparent"))
    # The input makes the seed unique even for a singleton instance id: a run's input holds its run_id.
    seed = f"{context.instance_id}|{json.dumps(request, sort_keys=True, default=str)}"
    trace_id = parent.trace_id if parent else derived_id(seed, bits=128)
    flags = parent.trace_flags if parent else TraceFlags(TraceFlags.SAMPLED)
    span = SpanContext(trace_id, derived_id(seed, bits=64), is_remote=False, trace_flags=flags)
    # Without a correlation id from a trigger, the trace id serves: it also names the whole run.
    correlation = fields.get("correlation_id") or format(trace_id, "032x")
    return OrchestrationTrace(correlation, fields.get("run_id"), parent, span)


def carry(context: OrchestrationContext, payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` plus this orchestration's correlation id and trace context, for an activity's or a
    sub-orchestration's input."""
    current = orchestration_trace(context)
    return {**payload, "correlation_id": current.correlation_id, "traceparent": traceparent(current.span)}


class ReplaySafeLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger for orchestrator code: silent while the orchestrator replays, so each line is written
    once; every line carries the orchestration's correlation id, run id, instance id and trace ids."""

    def __init__(self, logger: logging.Logger, context: OrchestrationContext) -> None:
        super().__init__(logger, {"instance_id": context.instance_id})
        self.context = context

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.context.is_replaying or not self.isEnabledFor(level):
            return
        current = orchestration_trace(self.context)
        with (
            logs.correlated(correlation_id=current.correlation_id, run_id=current.run_id),
            trace.use_span(NonRecordingSpan(current.span)),
        ):
            super().log(level, msg, *args, **kwargs)

    def process(self, msg: object, kwargs: MutableMapping[str, Any]) -> tuple[object, MutableMapping[str, Any]]:
        # The stock adapter replaces a call's `extra` with its own; keep both.
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def replay_safe(logger: logging.Logger, context: OrchestrationContext) -> ReplaySafeLogger:
    return ReplaySafeLogger(logger, context)


Orchestrator = Callable[[Any], Generator[Any, Any, Any]]


def observed_orchestrator(function: Orchestrator) -> Orchestrator:
    """Record the orchestrator's span once, when it completes or fails outside a replay.

    Goes under `@bp.orchestration_trigger(...)`; the function must be a generator (v1 style).
    """
    if not inspect.isgeneratorfunction(function):
        raise TypeError(f"{function.__name__} must be a generator function")
    name = function.__name__

    @functools.wraps(function)
    def orchestrator(context: Any) -> Generator[Any, Any, Any]:
        started = context.current_utc_datetime
        try:
            result = yield from function(context)
        except Exception as failure:
            if not context.is_replaying:
                _record(context, name, started, failure)
            raise
        if not context.is_replaying:
            _record(context, name, started, None)
        return result

    return orchestrator


def _record(context: OrchestrationContext, name: str, started: Any, error: BaseException | None) -> None:
    current = orchestration_trace(context)
    record_span(
        f"orchestrator {name}",
        current.span,
        parent=current.parent,
        start=started,
        end=context.current_utc_datetime,
        attributes={
            "orchestrator": name,
            "instance_id": context.instance_id,
            "correlation_id": current.correlation_id,
            "run_id": current.run_id,
        },
        error=error,
    )


def observed_activity(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run an activity in its input's log context, inside a span that is a child of its input's
    `traceparent`; log its outcome and duration. Goes under `@bp.activity_trigger(...)`."""
    name = function.__name__
    log = logging.getLogger(function.__module__)

    @functools.wraps(function)
    def activity(*args: Any, **kwargs: Any) -> Any:
        configure()
        # The Functions worker passes the input by its binding name, the local host positionally.
        request = args[0] if args else next(iter(kwargs.values()), None)
        fields = request if isinstance(request, dict) else {}
        attributes = {"activity": name, **{key: fields.get(key) for key in _SPAN_FIELDS}}
        started = time.perf_counter()
        with (
            logs.correlated(correlation_id=fields.get("correlation_id"), run_id=fields.get("run_id")),
            tracer().start_as_current_span(
                f"activity {name}",
                context=parent_context(fields.get("traceparent")),
                kind=SpanKind.CONSUMER,
                attributes={key: value for key, value in attributes.items() if value is not None},
            ),
        ):
            try:
                result = function(*args, **kwargs)
            except Exception as failure:
                log.warning(
                    "activity failed",
                    extra={"activity": name, "ms": _ms(started), "error": f"{type(failure).__name__}: {failure}"[:500]},
                )
                raise
            # DEBUG: the host (Azure's or ours) already records every execution, and so does the span.
            log.debug("activity finished", extra={"activity": name, "ms": _ms(started)})
            return result

    return activity


# Input fields worth having on an activity's span (the log context has correlation_id and run_id).
_SPAN_FIELDS = ("correlation_id", "run_id", "feed", "partition_no")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
