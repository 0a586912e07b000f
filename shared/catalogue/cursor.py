"""Opaque keyset cursors: the last row's sort value and id, bound to the search that issued them.

A cursor is a server-key token (`ServerKeys.seal`) around a JSON document. It is not secret (it only names a
position), but only the API can make one: the MAC, under a server key (shared/access/server_keys.py),
covers the JSON, which carries the search's fingerprint, so a cursor from another search, an edited
one or a minted one is refused. The value is also checked against its column's type and range,
so even a cursor signed by a key that leaked cannot make PostgreSQL fail.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.access.server_keys import InvalidToken, MalformedToken, ServerKeys
from shared.catalogue.query import SORT_COLUMNS, DiamondSearch

PURPOSE = b"cursor"
_MALFORMED = "cursor is malformed; use next_cursor exactly as returned"
# What each sort column's SQL type holds: numeric(7, 2) carats, bigint money, smallint ranks.
_INT_RANGE = {"price_cents": 2**63 - 1, "price_per_carat_cents": 2**63 - 1, "color": 2**15 - 1, "clarity": 2**15 - 1}
_CARATS_MAX = Decimal("99999.99")


class InvalidCursor(ValueError):
    """The cursor is not one this search issued."""


@dataclass(frozen=True)
class Position:
    """Where the previous page ended."""

    value: Any
    diamond_id: uuid.UUID


def encode(search: DiamondSearch, value: Any, diamond_id: uuid.UUID, keys: ServerKeys) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    document = json.dumps({"f": search.fingerprint(), "v": text, "id": str(diamond_id)}, separators=(",", ":"))
    return keys.seal(PURPOSE, document.encode())


def decode(search: DiamondSearch, cursor: str, keys: ServerKeys) -> Position:
    try:
        payload = keys.unseal(PURPOSE, cursor)
    except MalformedToken as exc:
        raise InvalidCursor(_MALFORMED) from exc
    except InvalidToken as exc:
        raise InvalidCursor(
            "cursor was not issued by this API, or has expired with a key rotation; search again"
        ) from exc
    try:
        document = json.loads(payload)
        fingerprint, text, diamond_id = document["f"], document["v"], uuid.UUID(document["id"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursor(_MALFORMED) from exc
    if fingerprint != search.fingerprint():
        raise InvalidCursor("cursor belongs to a search with other filters or another sort")
    try:
        return Position(_value(search.sort_column, text), diamond_id)
    except (ValueError, InvalidOperation, TypeError) as exc:
        raise InvalidCursor(_MALFORMED) from exc


def _value(column: str, text: str) -> Any:
    """The sort value as its column holds it; ValueError when the column could not hold it."""
    kind = SORT_COLUMNS[column]
    if kind is int:
        value: Any = int(text)
        if not -_INT_RANGE[column] <= value <= _INT_RANGE[column]:
            raise ValueError(f"{column} out of range")
    elif kind is Decimal:
        value = Decimal(text)
        if not value.is_finite() or abs(value) > _CARATS_MAX or value != value.quantize(Decimal("0.01")):
            raise ValueError(f"{column} out of range")
    else:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            raise ValueError("naive timestamp")
    return value
