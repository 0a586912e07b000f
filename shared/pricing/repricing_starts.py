"""Starting the orchestration that drives a repricing job: its input and the start helper.

`pricing_reprice` runs one job; its instance id is `reprice-<job id>` (shared/pricing/repricing.py:
`instance_id`), so a job has one orchestration at a time, and resuming a failed job starts the same id again.
The helper takes any durable client with the SDK's `start_new` coroutine (the Functions binding in Azure,
the local host's async client on a laptop), as shared/runs/starts.py does for runs.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared import logs
from shared.pricing.repricing import DEFAULT_BATCH_SIZE, instance_id
from shared.runs.starts import DurableClient
from shared.telemetry import carrier, trigger_span

REPRICE = "pricing_reprice"
# How long one activity call works before it reports progress (the custom status) and is called again: at
# ~9k stones/s, 1M stones take a dozen calls, so the orchestration's history stays small.
DEFAULT_SLICE_SECONDS = 10.0


def reprice_request(
    job_id: uuid.UUID | str, *, batch_size: int = DEFAULT_BATCH_SIZE, slice_seconds: float = DEFAULT_SLICE_SECONDS
) -> dict[str, Any]:
    """The input of a `pricing_reprice`: the job, its batch size and slice, the caller's correlation id."""
    return {"job_id": str(job_id), "batch_size": batch_size, "slice_seconds": slice_seconds, **carrier()}


async def start_repricing(client: DurableClient, job_id: uuid.UUID, **sizes: Any) -> str:
    """Start the job's orchestration; the caller created (or resumed) the job first."""
    name = instance_id(job_id)
    with trigger_span("start pricing_reprice", job_id=str(job_id), instance_id=name):
        request = reprice_request(job_id, **sizes)
        with logs.correlated(correlation_id=request["correlation_id"]):
            return await client.start_new(REPRICE, name, request)
