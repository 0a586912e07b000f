"""The app's orchestrators as plain generator functions, by registered name."""

from __future__ import annotations

import pytest
from fake_orchestration import Orchestrator, orchestrators_of


@pytest.fixture(scope="session")
def orchestrators() -> dict[str, Orchestrator]:
    import function_app

    return orchestrators_of(function_app.app)
