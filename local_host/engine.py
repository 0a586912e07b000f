"""One orchestration episode: replay the history through the SDK, turn its new actions into work.

The host delivers ONE new event per episode. That keeps task numbering unambiguous: the SDK numbers
tasks in the order it opens them, and within an episode it first opens what the new event implies
for a call with retry (a retry timer after a failure, the next attempt after that timer) and then
whatever the orchestrator yields when it resumes. The host mirrors that order exactly.

Retries are the host's job, not the SDK's (as in the Durable Functions extension): for a call with
retry the host writes TaskScheduled -> TaskFailed -> TimerCreated -> TimerFired -> TaskScheduled ...
and, after the last failure, one more timer that fires at once before the SDK surfaces the failure.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from local_host.protocol import Action, Event, event, flatten, orchestration_input, split_failure, timestamp

Orchestrator = Callable[[str], str]


@dataclass
class Instance:
    """What an episode needs to know about an instance (persisted by the store)."""

    instance_id: str
    name: str
    input: str | None
    parent_instance_id: str | None = None
    next_task_id: int = 0
    actions_seen: int = 0
    retries: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ActivityCall:
    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class ChildStart:
    task_id: int
    instance_id: str
    name: str
    input: str | None


@dataclass(frozen=True)
class TimerMessage:
    fire_at: datetime
    event: dict[str, Any]


@dataclass
class Episode:
    """Everything an episode decided; the store applies it in one transaction."""

    history: list[dict[str, Any]] = field(default_factory=list)  # appended to the instance's history
    activities: list[ActivityCall] = field(default_factory=list)
    children: list[ChildStart] = field(default_factory=list)
    timers: list[TimerMessage] = field(default_factory=list)
    status: str = "Running"  # Running | Completed | Failed
    output: str | None = None  # JSON text
    error: str | None = None
    custom_status: str | None = None  # JSON text
    continue_as_new: str | None = None  # the new input, JSON text


def run_episode(
    orchestrator: Orchestrator,
    instance: Instance,
    history: list[dict[str, Any]],
    incoming: dict[str, Any],
    now: datetime,
) -> Episode:
    """Apply `incoming` to `instance`: replay, collect new actions. Mutates `instance`'s counters."""
    episode = Episode()
    started = event(Event.ORCHESTRATOR_STARTED, now)
    decisions = _retry_bookkeeping(instance, incoming, now, episode)
    replay = [{**e, "IsPlayed": True} for e in history] + [started, incoming]
    payload = orchestration_input(
        replay, instance.instance_id, instance.input, instance.parent_instance_id, replaying=bool(history)
    )
    try:
        state = json.loads(orchestrator(payload))
    except Exception as exc:  # noqa: BLE001 - an orchestrator failure is an outcome, recorded below
        message, state = split_failure(exc)
        episode.status = "Failed"
        episode.error = message or type(exc).__name__
        episode.history = [started, incoming, *decisions, _failed(now, episode.error, exc)]
        if state is not None:
            episode.custom_status = _json_or_none(state.get("customStatus"))
        return episode

    episode.custom_status = _json_or_none(state.get("customStatus"))
    decisions += _schedule_new_actions(instance, state.get("actions") or [], now, episode)
    if state.get("isDone"):
        continued = [a for a in flatten(state.get("actions") or []) if a.get("actionType") == Action.CONTINUE_AS_NEW]
        if continued:
            episode.continue_as_new = _input_text(continued[-1].get("input"))
            decisions.append(event(Event.CONTINUE_AS_NEW, now, Input=episode.continue_as_new))
        else:
            episode.status = "Completed"
            episode.output = json.dumps(state.get("output"))
            decisions.append(event(Event.EXECUTION_COMPLETED, now, Result=episode.output, OrchestrationStatus=0))
    episode.history = [started, incoming, *decisions, event(Event.ORCHESTRATOR_COMPLETED, now)]
    return episode


def execution_started(name: str, input_json: str | None, now: datetime) -> dict[str, Any]:
    # Version is required: the SDK 1.7 reads it unconditionally.
    return event(Event.EXECUTION_STARTED, now, Name=name, Version="", Input=input_json)


def activity_result(task_id: int, result_json: str, now: datetime) -> dict[str, Any]:
    return event(Event.TASK_COMPLETED, now, TaskScheduledId=task_id, Result=result_json)


def activity_failure(task_id: int, name: str, exc: BaseException, now: datetime) -> dict[str, Any]:
    # The same Reason wording as the Functions extension, so orchestrators see what they would in Azure.
    return event(
        Event.TASK_FAILED,
        now,
        TaskScheduledId=task_id,
        Reason=f"Activity function '{name}' failed: {exc}",
        Details="".join(traceback.format_exception(exc))[-4000:],
    )


def child_result(task_id: int, status: str, output: str | None, error: str | None, now: datetime) -> dict[str, Any]:
    if status == "Completed":
        return event(Event.SUB_ORCHESTRATION_COMPLETED, now, TaskScheduledId=task_id, Result=output)
    return event(Event.SUB_ORCHESTRATION_FAILED, now, TaskScheduledId=task_id, Reason=error or status, Details=status)


# --- internals


def _retry_bookkeeping(
    instance: Instance, incoming: dict[str, Any], now: datetime, episode: Episode
) -> list[dict[str, Any]]:
    """What the SDK opens for a call with retry when `incoming` is replayed, numbered as the SDK numbers it."""
    kind = incoming["EventType"]
    decisions: list[dict[str, Any]] = []
    if kind in (Event.TASK_FAILED, Event.SUB_ORCHESTRATION_FAILED):
        retry = _find(instance.retries, "current_id", incoming["TaskScheduledId"])
        if retry is not None:
            timer_id = _next_id(instance)
            final = retry["attempts"] >= retry["options"]["maxNumberOfAttempts"]
            fire_at = now if final else now + _retry_delay(retry["options"], retry["attempts"])
            retry["timer_id"] = timer_id
            decisions.append(event(Event.TIMER_CREATED, now, timer_id, FireAt=timestamp(fire_at)))
            episode.timers.append(
                TimerMessage(fire_at, event(Event.TIMER_FIRED, fire_at, TimerId=timer_id, FireAt=timestamp(fire_at)))
            )
    elif kind == Event.TIMER_FIRED:
        retry = _find(instance.retries, "timer_id", incoming["TimerId"])
        if retry is not None:
            if retry["attempts"] >= retry["options"]["maxNumberOfAttempts"]:
                instance.retries.remove(retry)  # the SDK now surfaces the last failure
            else:
                retry["attempts"] += 1
                retry["timer_id"] = None
                retry["current_id"] = _next_id(instance)
                decisions.append(_dispatch(instance, retry["kind"], retry["current_id"], retry["call"], now, episode))
    elif kind in (Event.TASK_COMPLETED, Event.SUB_ORCHESTRATION_COMPLETED):
        retry = _find(instance.retries, "current_id", incoming["TaskScheduledId"])
        if retry is not None:
            instance.retries.remove(retry)
    return decisions


def _schedule_new_actions(
    instance: Instance, actions: list[Any], now: datetime, episode: Episode
) -> list[dict[str, Any]]:
    flat = flatten(actions)
    decisions: list[dict[str, Any]] = []
    for action in flat[instance.actions_seen :]:
        kind = action.get("actionType")
        if kind in (Action.CALL_ACTIVITY, Action.CALL_ACTIVITY_WITH_RETRY):
            call_kind = "activity"
        elif kind in (Action.CALL_SUB_ORCHESTRATOR, Action.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            call_kind = "orchestration"
        elif kind == Action.CREATE_TIMER:
            task_id = _next_id(instance)
            decisions.append(event(Event.TIMER_CREATED, now, task_id, FireAt=action["fireAt"]))
            if not action.get("isCanceled"):
                fire_at = datetime.fromisoformat(action["fireAt"].replace("Z", "+00:00"))
                episode.timers.append(
                    TimerMessage(fire_at, event(Event.TIMER_FIRED, fire_at, TimerId=task_id, FireAt=action["fireAt"]))
                )
            continue
        else:
            # Continue-as-new needs no task; external events are numbered by name, not by sequence.
            continue
        task_id = _next_id(instance)
        if "retryOptions" in action:
            instance.retries.append(
                {
                    "kind": call_kind,
                    "call": action,
                    "options": action["retryOptions"],
                    "attempts": 1,
                    "current_id": task_id,
                    "timer_id": None,
                }
            )
        decisions.append(_dispatch(instance, call_kind, task_id, action, now, episode))
    instance.actions_seen = len(flat)
    return decisions


def _dispatch(
    instance: Instance, kind: str, task_id: int, action: dict[str, Any], now: datetime, episode: Episode
) -> dict[str, Any]:
    input_json = _input_text(action.get("input"))
    if kind == "activity":
        episode.activities.append(ActivityCall(task_id, action["functionName"], input_json))
        return event(Event.TASK_SCHEDULED, now, task_id, Name=action["functionName"], Input=input_json)
    child_id = action.get("instanceId") or f"{instance.instance_id}:{task_id}"
    episode.children.append(ChildStart(task_id, child_id, action["functionName"], input_json))
    return event(
        Event.SUB_ORCHESTRATION_CREATED,
        now,
        task_id,
        Name=action["functionName"],
        Input=input_json,
        InstanceId=child_id,
    )


def _retry_delay(options: dict[str, Any], attempts: int) -> timedelta:
    delay = options["firstRetryIntervalInMilliseconds"] * options.get("backoffCoefficient", 1) ** (attempts - 1)
    cap = options.get("maxRetryIntervalInMilliseconds") or 0
    return timedelta(milliseconds=min(delay, cap) if cap > 0 else delay)


def _next_id(instance: Instance) -> int:
    task_id = instance.next_task_id
    instance.next_task_id += 1
    return task_id


def _find(retries: list[dict[str, Any]], key: str, value: int) -> dict[str, Any] | None:
    return next((r for r in retries if r[key] == value), None)


def _input_text(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else json.dumps(value)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _failed(now: datetime, message: str, exc: BaseException) -> dict[str, Any]:
    return event(Event.EXECUTION_FAILED, now, Reason=message, Details="".join(traceback.format_exception(exc))[-4000:])
