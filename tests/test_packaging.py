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


def test_function_app_indexes_plan_activity() -> None:
    import function_app

    functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
    assert "plan_feed" in functions
    bindings = functions["plan_feed"].get_bindings()
    assert [(b.type, b.name) for b in bindings] == [("activityTrigger", "request")]
