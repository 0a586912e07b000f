"""The pricing operator endpoints under /api/v1/pricing (pricing scope): rule sets and quotes
(pricing_sets.py), repricing jobs and the audit trail (pricing_jobs.py). docs/pricing.md describes them."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import pricing_jobs, pricing_sets

router = APIRouter()
router.include_router(pricing_sets.router)
router.include_router(pricing_jobs.router)
