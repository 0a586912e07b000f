"""The app from the process's settings: what `caratflow serve` and the Functions entry point import."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from shared.config import get_settings


def from_environment() -> FastAPI:
    """An app configured from the environment and local.settings.json (a uvicorn factory)."""
    return create_app(get_settings())
