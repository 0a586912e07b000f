"""Packaging: requirements.txt (what Azure installs) agrees with pyproject; the app indexes."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _normalised(lines: list[str]) -> set[str]:
    return {str(Requirement(line)) for line in lines}


def test_requirements_txt_matches_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = _normalised(pyproject["project"]["dependencies"])
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert _normalised(lines) == declared


EXPECTED_FUNCTIONS = {
    # activities
    "create_run": {"activityTrigger"},
    "replay_run": {"activityTrigger"},
    "plan_run": {"activityTrigger"},
    "fetch_partition": {"activityTrigger"},
    "dead_letter_partition": {"activityTrigger"},
    "consolidate_feed": {"activityTrigger"},
    "finalize_run": {"activityTrigger"},
    "fail_run": {"activityTrigger"},
    "resume_run": {"activityTrigger"},
    "start_repricing": {"activityTrigger"},
    "advance_repricing": {"activityTrigger"},
    "fail_repricing": {"activityTrigger"},
    # orchestrators
    "sync_run": {"orchestrationTrigger"},
    "sync_replay": {"orchestrationTrigger"},
    "sync_fetch_batch": {"orchestrationTrigger"},
    "sync_fetch_partition": {"orchestrationTrigger"},
    "sync_resume": {"orchestrationTrigger"},
    "pricing_reprice": {"orchestrationTrigger"},
    # one full and one incremental timer per feed, each starting runs through the durable client
    "timer_full_nivoda_natural": {"timerTrigger", "durableClient"},
    "timer_incremental_nivoda_natural": {"timerTrigger", "durableClient"},
    "timer_full_nivoda_labgrown": {"timerTrigger", "durableClient"},
    "timer_incremental_nivoda_labgrown": {"timerTrigger", "durableClient"},
    # maintenance: notification delivery, and retention (which purges orchestration history too)
    "timer_notify_delivery": {"timerTrigger"},
    "timer_retention": {"timerTrigger", "durableClient"},
    # the only HTTP function: every path goes to the FastAPI app (api/functions.py)
    "http_api": {"httpTrigger", "http", "durableClient"},
}


def test_function_app_indexes_every_function() -> None:
    import function_app
    from local_host.host import indexed

    functions = {f.get_function_name(): f for f in indexed(function_app.app)}
    assert {name: {b.type for b in f.get_bindings()} for name, f in functions.items()} == EXPECTED_FUNCTIONS
    timer = next(b for b in functions["timer_full_nivoda_natural"].get_bindings() if b.type == "timerTrigger")
    assert timer.schedule == "%SYNC_SCHEDULE_FULL_NIVODA_NATURAL%"
    # One HTTP function, so that no catch-all can shadow another HTTP route (the route-order trap).
    http = [f for f in functions.values() if any(b.type == "httpTrigger" for b in f.get_bindings())]
    assert [f.get_function_name() for f in http] == ["http_api"]
    trigger = next(b for b in http[0].get_bindings() if b.type == "httpTrigger")
    assert trigger.route == "{*route}"


def test_every_timer_schedule_setting_is_documented() -> None:
    import json

    from shared.feed.registry import FEEDS
    from triggers.timers import schedule_setting

    sample = json.loads((ROOT / "local.settings.sample.json").read_text())
    for feed in FEEDS:
        for kind in ("full", "incremental"):
            assert schedule_setting(feed, kind) in sample["Values"]
            assert schedule_setting(feed, kind) in sample["Docs"]


def test_maintenance_timers_read_documented_schedules() -> None:
    import json

    import function_app
    from local_host.host import indexed

    sample = json.loads((ROOT / "local.settings.sample.json").read_text())
    functions = {f.get_function_name(): f for f in indexed(function_app.app)}
    for name, setting in (
        ("timer_notify_delivery", "NOTIFY_DELIVERY_SCHEDULE"),
        ("timer_retention", "RETENTION_SCHEDULE"),
    ):
        timer = next(b for b in functions[name].get_bindings() if b.type == "timerTrigger")
        assert timer.schedule == f"%{setting}%"
        assert setting in sample["Docs"]
        # NCRONTAB: six fields, seconds first.
        assert len(sample["Values"][setting].split()) == 6
