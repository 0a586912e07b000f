"""A stand-in for DurableOrchestrationContext that runs an orchestrator's decisions with no host.

Every task completes at once: an activity's result (or exception) comes from the test's function of
its input, a sub-orchestration runs the orchestrator the test names (or a plain function) with a child
context of its own. `task_any` answers with the first task of its list, so a run is deterministic.
Every call is recorded in `calls`, in order and across sub-orchestrations, for tests to assert on.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Orchestrator = Callable[[Any], Generator[Any, Any, Any]]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Call:
    kind: str  # "activity" or "sub_orchestrator"
    name: str
    input: Any
    retry: Any = None  # the retry options of call_activity_with_retry
    instance_id: str = ""  # the calling orchestration's


class FakeTask:
    """A task that has already finished: with `result`, or with `error` (raised when yielded)."""

    def __init__(self, run: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: Exception | None = None
        try:
            self.result = run()
        except Exception as exc:  # noqa: BLE001 - kept, raised into the orchestrator when it yields the task
            self.error = exc

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class FakeSelection:
    """What `task_any` returns to be yielded: the finished task itself, as the SDK does."""

    def __init__(self, tasks: Sequence[FakeTask]) -> None:
        if not tasks:
            raise ValueError("task_any of no tasks")
        self.chosen = tasks[0]

    def outcome(self) -> FakeTask:
        return self.chosen


@dataclass
class Fakes:
    """What the activities and sub-orchestrators answer, shared by a context and its children."""

    activities: dict[str, Callable[[Any], Any]]
    orchestrators: dict[str, Orchestrator | Callable[[Any], Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def calls_of(self, name: str) -> list[Call]:
        return [call for call in self.calls if call.name == name]


class FakeOrchestrationContext:
    """The parts of DurableOrchestrationContext the orchestrators use."""

    def __init__(self, fakes: Fakes, input_: Any, instance_id: str = "sync-test", *, now: datetime = NOW) -> None:
        self.fakes = fakes
        self.instance_id = instance_id
        self.current_utc_datetime = now
        self.is_replaying = False
        self.custom_statuses: list[Any] = []
        self._input = json.dumps(input_)
        self._children = 0

    def get_input(self) -> Any:
        return json.loads(self._input)  # a fresh decode, as every replay gets

    def set_custom_status(self, status: Any) -> None:
        self.custom_statuses.append(json.loads(json.dumps(status)))

    def call_activity(self, name: str, input_: Any = None) -> FakeTask:
        return self._activity(Call("activity", name, _as_json(input_), None, self.instance_id))

    def call_activity_with_retry(self, name: str, retry_options: Any, input_: Any = None) -> FakeTask:
        # The fake answers for the last attempt: an exception means the retries are spent.
        return self._activity(Call("activity", name, _as_json(input_), retry_options, self.instance_id))

    def call_sub_orchestrator(self, name: str, input_: Any = None, instance_id: str | None = None) -> FakeTask:
        call = Call("sub_orchestrator", name, _as_json(input_), None, self.instance_id)
        self.fakes.calls.append(call)
        self._children += 1
        child_id = instance_id or f"{self.instance_id}:{self._children}"
        function = self.fakes.orchestrators[name]
        if inspect.isgeneratorfunction(function):
            child = FakeOrchestrationContext(self.fakes, call.input, child_id, now=self.current_utc_datetime)
            return FakeTask(lambda: run(function, child))
        return FakeTask(lambda: function(call.input))

    def task_all(self, tasks: Sequence[FakeTask]) -> FakeTask:
        return FakeTask(lambda: [task.outcome() for task in tasks])

    def task_any(self, tasks: Sequence[FakeTask]) -> FakeSelection:
        return FakeSelection(tasks)

    def _activity(self, call: Call) -> FakeTask:
        self.fakes.calls.append(call)
        answer = self.fakes.activities[call.name]
        return FakeTask(lambda: answer(call.input))


def _as_json(value: Any) -> Any:
    """What the activity would receive: the input after a JSON round trip (it must survive one)."""
    return json.loads(json.dumps(value))


def run(orchestrator: Orchestrator, context: FakeOrchestrationContext) -> Any:
    """Drive `orchestrator` to its end: each yielded task's result is sent back, or its error thrown in."""
    steps = orchestrator(context)
    answer: Any = None
    error: Exception | None = None
    while True:
        try:
            task = steps.throw(error) if error is not None else steps.send(answer)
        except StopIteration as done:
            return done.value
        answer, error = None, None
        try:
            answer = task.outcome()
        except Exception as exc:  # noqa: BLE001 - thrown into the orchestrator, as the SDK does
            error = exc


def orchestrators_of(app: Any) -> dict[str, Orchestrator]:
    """The generator functions registered as orchestrators in a Functions app, by name: with their
    decorators (`observed_orchestrator`), without the SDK's handle that replays a JSON history."""
    from local_host.host import indexed

    return {
        function.get_function_name(): function.get_user_function().orchestrator_function
        for function in indexed(app)
        if function.get_trigger().type == "orchestrationTrigger"
    }
