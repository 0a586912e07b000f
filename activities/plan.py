"""The plan activity: scan a feed (or reuse its cached scan) and return its partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import azure.durable_functions as df
from pydantic import AwareDatetime, BaseModel

from activities import deps
from shared.config import get_settings
from shared.feed.registry import get_feed
from shared.planning.plan import Plan, plan_full, plan_incremental

bp = df.Blueprint()


class PlanRequest(BaseModel):
    feed: str
    kind: Literal["full", "incremental"]
    updated_from: AwareDatetime | None = None


def run_plan(request: PlanRequest) -> Plan:
    settings = get_settings()
    spec = get_feed(request.feed)
    source = spec.open_source(settings, deps.pool())
    now = datetime.now(UTC)
    sizes = {"target_size": settings.plan_target_partition_size, "max_partitions": settings.plan_max_partitions}
    if request.kind == "full":
        return plan_full(spec, source, deps.scan_store(), now=now, **sizes)
    if request.updated_from is None:
        raise ValueError("an incremental plan needs updated_from")
    return plan_incremental(
        spec,
        source,
        deps.scan_store(),
        updated_from=request.updated_from,
        scan_max_age=timedelta(hours=settings.scan_max_age_hours),
        now=now,
        **sizes,
    )


@bp.activity_trigger(input_name="request")
def plan_feed(request: dict) -> dict:
    """Plan a run of one feed; the answer is small (partition bounds and counts)."""
    return run_plan(PlanRequest.model_validate(request)).model_dump(mode="json")
