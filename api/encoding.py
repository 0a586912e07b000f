"""Rows to JSON: Decimal as a string (exact), UUIDs and UTC timestamps as ISO text; never floats."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import Response


def _default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(content: Any) -> bytes:
    return json.dumps(content, default=_default, separators=(",", ":")).encode()


class JsonResponse(Response):
    """Serialises rows straight from the database, skipping a per-row model (the schemas document the shape)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)
