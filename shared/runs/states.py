"""The run's vocabulary and the rules of every hand-made change: pure, no I/O.

A run moves forward through ACTIVE statuses to one of the FINISHED ones; the database holds at most one
active run per feed (migration 0001's `runs_one_active_per_feed`). Operators change runs in three ways,
and each has one rule here that every path applies (the API before it starts an orchestration, for a
prompt 409; the activity or statement that makes the change, under the run's row lock, so a race
between the two cannot slip through):

- replay: fetch a finished run's open dead-lettered partitions again, into the same run;
- cancel: stop an unfinished run;
- resume: consolidate and finalize a run that stopped in consolidation.

Orchestrators import this module (it is pure), so the statuses are spelled once for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RunKind = Literal["full", "incremental"]
RunStatus = Literal[
    "pending",
    "planning",
    "fetching",
    "consolidating",
    "finalizing",
    "succeeded",
    "partially_succeeded",
    "failed",
    "cancelled",
]
ACTIVE: tuple[RunStatus, ...] = ("pending", "planning", "fetching", "consolidating", "finalizing")
FINISHED: tuple[RunStatus, ...] = ("succeeded", "partially_succeeded", "failed", "cancelled")
# Where an operator finds a run stopped by its consolidation: marked so still (the orchestration was
# lost) or failed there.
STOPPED_IN_CONSOLIDATION: tuple[RunStatus, ...] = ("consolidating", "finalizing")

PartitionStatus = Literal["pending", "fetching", "fetched", "failed", "dead_lettered"]
DeadLetterStatus = Literal["open", "replaying", "replayed", "purged"]
DeadLetterKind = Literal["partition"]
RunTrigger = Literal["timer", "http", "cli", "replay"]

# How a run's error starts when its consolidators gave up; such a run can be resumed.
CONSOLIDATION_FAILED = "consolidation failed"


class RunStateConflict(Exception):
    """The run or dead letter is not in a state that allows the change asked for."""

    def __init__(self, detail: str, hint: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.hint = hint


class RunAlreadyActive(RunStateConflict):
    """Another run of this feed is still active (one active run per feed)."""


class UnknownRun(LookupError):
    """No run has this id."""


@dataclass(frozen=True)
class Refusal:
    """Why a change is not allowed now, and what the operator can do about it."""

    detail: str
    hint: str

    def conflict(self) -> RunStateConflict:
        return RunStateConflict(self.detail, self.hint)


def is_finished(status: str) -> bool:
    return status in FINISHED


def replay_refusal(run_id: object, status: str, open_letters: int) -> Refusal | None:
    """A replay needs a finished run (its orchestration no longer writes to it) with open partition letters."""
    if status not in FINISHED:
        return Refusal(f"run {run_id} is {status}", "Replay once the run has finished.")
    if open_letters == 0:
        return Refusal(f"run {run_id} has no open dead-lettered partitions", "Nothing to replay.")
    return None


def cancel_refusal(run_id: object, status: str) -> Refusal | None:
    if status in FINISHED:
        return Refusal(f"run {run_id} is {status}; it cannot be cancelled", "Only an unfinished run can be cancelled.")
    return None


def resumable(status: str, error: str | None) -> bool:
    """A run stopped in consolidation: still marked so (its orchestration was lost) or failed there."""
    return status in STOPPED_IN_CONSOLIDATION or (status == "failed" and (error or "").startswith(CONSOLIDATION_FAILED))


def resume_refusal(run_id: object, status: str, error: str | None) -> Refusal | None:
    if not resumable(status, error):
        return Refusal(f"run {run_id} is {status}", "Only a run stopped in consolidation can be resumed.")
    return None
