"""What an orchestration was started with."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df


def request_of(context: df.DurableOrchestrationContext) -> dict[str, Any]:
    """The orchestration's input: every orchestration here is started with a JSON object."""
    request = context.get_input()
    if not isinstance(request, dict):
        raise TypeError(f"orchestration {context.instance_id}: its input is not an object: {request!r}")
    return request
