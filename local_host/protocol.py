"""The out-of-process orchestration protocol, as the Durable Functions extension speaks it.

History events are PascalCase dicts (the shape the SDK's `HistoryEvent` reads: `EventType`, `EventId`,
`IsPlayed`, `Timestamp`, plus per type `Name`, `Input`, `Result`, `TaskScheduledId`, `TimerId`, `FireAt`...);
`history[0]` is OrchestratorStarted (its Timestamp becomes `current_utc_datetime`) and `history[1]`
ExecutionStarted, which must carry a `Version` (the 1.7.0 SDK fails without it). The orchestrator's
answer (`isDone`, `actions`, `output`, `customStatus`, `error`) carries a CUMULATIVE list of actions, all
since the start: only its tail is new work; with schema version 2 a `task_all` is one WhenAll action
(actionType 12) holding its children as `compoundActions`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any


class Event(IntEnum):
    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16


class Action(IntEnum):
    CALL_ACTIVITY = 0
    CALL_ACTIVITY_WITH_RETRY = 1
    CALL_SUB_ORCHESTRATOR = 2
    CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
    CONTINUE_AS_NEW = 4
    CREATE_TIMER = 5
    WAIT_FOR_EXTERNAL_EVENT = 6
    WHEN_ANY = 11
    WHEN_ALL = 12


COMPOUND_ACTIONS = {Action.WHEN_ANY, Action.WHEN_ALL}
SCHEDULING_ACTIONS = {
    Action.CALL_ACTIVITY,
    Action.CALL_ACTIVITY_WITH_RETRY,
    Action.CALL_SUB_ORCHESTRATOR,
    Action.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
    Action.CREATE_TIMER,
}


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event(kind: Event, moment: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    """One history event. `IsPlayed` is fixed up when the history is sent to the orchestrator."""
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False, "Timestamp": timestamp(moment), **fields}


def flatten(actions: list[Any]) -> list[dict[str, Any]]:
    """The cumulative action list as atomic actions in the order the SDK numbered their tasks.

    Schema 2 nests `task_all`/`task_any` as compound actions; schema 1 sends a list per episode.
    """
    flat: list[dict[str, Any]] = []
    for item in actions:
        if isinstance(item, list):
            flat.extend(flatten(item))
        elif item.get("actionType") in COMPOUND_ACTIONS:
            flat.extend(flatten(item.get("compoundActions", [])))
        else:
            flat.append(item)
    return flat


def orchestration_input(
    history: list[dict[str, Any]],
    instance_id: str,
    input_json: str | None,
    parent_instance_id: str | None,
    *,
    replaying: bool,
) -> str:
    """The JSON document the SDK's orchestrator `handle` receives (`input` is JSON text, as the host sends it)."""
    return json.dumps(
        {
            "history": history,
            "input": input_json,
            "instanceId": instance_id,
            "isReplaying": replaying,
            "parentInstanceId": parent_instance_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
    )


OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"


def split_failure(exc: Exception) -> tuple[str, dict[str, Any] | None]:
    """An orchestrator that raised: its message and the state the SDK attached to it."""
    text = str(exc)
    if OUT_OF_PROC_MARKER not in text:
        return text, None
    message, _, state = text.partition(OUT_OF_PROC_MARKER)
    return message, json.loads(state)
