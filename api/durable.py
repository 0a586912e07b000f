"""Transitional: `DurableClient` lives in api/deps.py; this goes once api/routes/runs.py imports it from there."""

from api.deps import DurableClient as DurableClient
