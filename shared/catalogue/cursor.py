"""Opaque keyset cursors: the last row's sort value and id, bound to the search that issued them.

A cursor is base64url JSON. It is not secret (it only names a position), but it is checked like any
other input: a cursor from another search, or one that does not decode to the sort column's type,
is refused with a clear message rather than silently restarting the walk.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.catalogue.query import SORT_COLUMNS, DiamondSearch


class InvalidCursor(ValueError):
    """The cursor is not one this search issued."""


@dataclass(frozen=True)
class Position:
    """Where the previous page ended."""

    value: Any
    diamond_id: uuid.UUID


def encode(search: DiamondSearch, value: Any, diamond_id: uuid.UUID) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    document = {"f": search.fingerprint(), "v": text, "id": str(diamond_id)}
    return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(search: DiamondSearch, cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
        fingerprint, text, diamond_id = document["f"], document["v"], uuid.UUID(document["id"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is malformed; use next_cursor exactly as returned") from exc
    if fingerprint != search.fingerprint():
        raise InvalidCursor("cursor belongs to a search with other filters or another sort")
    kind = SORT_COLUMNS[search.sort_column]
    try:
        if kind is int:
            value: Any = int(text)
        elif kind is Decimal:
            value = Decimal(text)
            if not value.is_finite():
                raise InvalidOperation
        else:
            value = datetime.fromisoformat(text)
            if value.tzinfo is None:
                raise ValueError("naive timestamp")
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise InvalidCursor("cursor is malformed; use next_cursor exactly as returned") from exc
    return Position(value, diamond_id)
