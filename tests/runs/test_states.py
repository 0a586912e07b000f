"""The run vocabulary and the rules of operators' changes, without a database."""

from __future__ import annotations

from typing import get_args

import pytest

from shared.runs.states import (
    ACTIVE,
    CONSOLIDATION_FAILED,
    FINISHED,
    RunStatus,
    cancel_refusal,
    replay_refusal,
    resumable,
    resume_refusal,
)


def test_every_status_is_either_active_or_finished() -> None:
    assert set(ACTIVE) | set(FINISHED) == set(get_args(RunStatus))
    assert not set(ACTIVE) & set(FINISHED)


@pytest.mark.parametrize("status", ACTIVE)
def test_an_unfinished_run_is_not_replayed_whatever_its_letters(status: str) -> None:
    refusal = replay_refusal("r1", status, open_letters=3)
    assert refusal is not None
    assert refusal.detail == f"run r1 is {status}"


@pytest.mark.parametrize("status", FINISHED)
def test_a_finished_run_replays_only_with_open_letters(status: str) -> None:
    assert replay_refusal("r1", status, open_letters=1) is None
    refusal = replay_refusal("r1", status, open_letters=0)
    assert refusal is not None
    assert "no open dead-lettered partitions" in refusal.detail


def test_only_an_unfinished_run_is_cancelled() -> None:
    assert all(cancel_refusal("r1", status) is None for status in ACTIVE)
    assert all(cancel_refusal("r1", status) is not None for status in FINISHED)


@pytest.mark.parametrize(
    ("status", "error", "allowed"),
    [
        ("consolidating", None, True),
        ("finalizing", None, True),
        ("failed", f"{CONSOLIDATION_FAILED}: a constraint refused it", True),
        ("failed", "only 1 of 4 partitions fetched", False),
        ("failed", None, False),
        ("fetching", None, False),
        ("succeeded", None, False),
        ("cancelled", f"{CONSOLIDATION_FAILED}: but cancelled since", False),
    ],
)
def test_resume_is_for_a_run_stopped_in_consolidation(status: str, error: str | None, allowed: bool) -> None:
    assert resumable(status, error) is allowed
    assert (resume_refusal("r1", status, error) is None) is allowed
