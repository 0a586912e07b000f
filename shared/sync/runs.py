"""Moved to shared/runs (issue 12). Kept only while two callers outside the run package move over:
this module is deleted before the issue closes."""

from shared.runs.lifecycle import create_run, save_plan, set_status
from shared.runs.partitions import list_partitions as partitions_of

__all__ = ["create_run", "partitions_of", "save_plan", "set_status"]
