"""Retention: what ages out of the database (rules.py) and the bounded, batched sweep that removes it
(sweep.py). Orchestration history is purged through the durable client (orchestrators/maintenance.py)."""
