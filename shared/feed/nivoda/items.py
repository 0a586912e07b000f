"""Validation of Nivoda items at the feed boundary.

Only what the catalogue cannot do without is required (ids, price, shape, carats, lab-grown flag);
the rest is optional here and mapped later. Unknown fields are kept: the raw row stores the item as
received. A failing item becomes a RejectedItem with its reason; the page goes on.

A poison item (a NUL, a lone surrogate or another character `shared.text.check_text` refuses, or a
NaN/Infinity number, in any key or value at any depth) is one such reject: PostgreSQL cannot store it
and canonical JSON cannot be written for it, so left in the page it would fail the whole page.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from shared.feed.page import FeedItem, RejectedItem, canonical_json, storable_json
from shared.text import check_text


def _not_blank(value: str) -> str:
    # A whitespace-only id collapsed different stones into one raw row: it names no stone.
    if not value.strip():
        raise ValueError("id is blank")
    return value


_Id = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_text), AfterValidator(_not_blank)]

# In canonical JSON (ensure_ascii=False) a character check_text refuses shows either as itself (DEL,
# C1, surrogates, non-characters) or as an escape (\u00XX, \b, \f for C0). A hit (rarely a false
# one, e.g. a literal backslash-b) sends the item through the exact walk below; clean items skip it.
_SUSPECT = re.compile(r"[\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]|\\u00[01]|\\[bf]")
_MAX_REASONS = 5


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


# The text fields the catalogue maps are declared as text: an object or a list there (a supplier's
# schema gone wrong) is a reject naming the field, here where checking costs nothing next to the
# feed's request budget, instead of being catalogued as its JSON text. Their values are mapped later.
_Text = str | None


class Certificate(_Lenient):
    shape: str = Field(min_length=1, max_length=50)
    carats: Decimal = Field(gt=0, lt=1000, decimal_places=3)
    # Strict: pydantic would read "yes" as true, while the mapping reads only JSON true and false.
    labgrown: bool | None = Field(default=None, strict=True)
    color: _Text = None
    clarity: _Text = None
    certNumber: _Text = None
    lab: _Text = None
    pdfUrl: _Text = None
    cut: _Text = None
    polish: _Text = None
    symmetry: _Text = None
    floInt: _Text = None
    floCol: _Text = None
    girdle: _Text = None
    culetSize: _Text = None
    labgrown_type: _Text = None
    f_color: _Text = None
    f_intensity: _Text = None
    f_overtone: _Text = None


class Supplier(_Lenient):
    id: _Text = None
    name: _Text = None


class Diamond(_Lenient):
    id: _Id
    availability: _Text = None
    supplierStockId: _Text = None
    image: _Text = None
    video: _Text = None
    eyeClean: bool | None = Field(default=None, strict=True)
    brown: int | None = Field(default=None, strict=True)  # tinge levels 0-3
    green: int | None = Field(default=None, strict=True)
    milky: int | None = Field(default=None, strict=True)
    mine_of_origin: _Text = None
    supplier: Supplier | None = None
    certificate: Certificate


class Item(_Lenient):
    id: _Id
    price: int = Field(ge=0, strict=False)  # cents
    diamond: Diamond


def validate_items(raw_items: Any) -> tuple[list[FeedItem], list[RejectedItem]]:
    """Split a page's raw items into valid FeedItems and RejectedItems with reasons."""
    if not isinstance(raw_items, list):
        raise TypeError(f"items must be a list, got {type(raw_items).__name__}")
    items: list[FeedItem] = []
    rejects: list[RejectedItem] = []
    for index, raw in enumerate(raw_items):
        text = _canonical_or_none(raw)
        if text is None or _SUSPECT.search(text):
            poison = poison_reasons(raw)
            if poison:
                rejects.append(RejectedItem(index, _readable_stone_id(raw), poison, storable_json(raw)))
                continue
        try:
            item = Item.model_validate(raw)
        except ValidationError as exc:
            rejects.append(RejectedItem(index, _readable_stone_id(raw), _reason(exc), storable_json(raw)))
            continue
        assert text is not None  # no poison: canonical JSON was written
        digest = hashlib.sha256(text.encode()).digest()
        carats = item.diamond.certificate.carats
        items.append(FeedItem(item.diamond.id, item.id, text, digest, item.price, index, carats))
    return items, rejects


def poison_reasons(raw: Any) -> str:
    """Every refused character and non-finite number in `raw`, by path ("" when there is none)."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", raw)]  # iterative: the feed decides how deep items nest
    while stack and len(found) < _MAX_REASONS:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, child in reversed(list(value.items())):
                problem = _text_problem(key)
                if problem:
                    found.append(f"{path or 'item'}: key {_visible(key)}: {problem}")
                stack.append((_join(path, _visible(key) if problem else key), child))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            problem = _text_problem(value)
            if problem:
                found.append(f"{path or 'item'}: {problem}")
        elif isinstance(value, float) and not math.isfinite(value):
            found.append(f"{path or 'item'}: {value!r} is not a number JSON or PostgreSQL can hold")
    return "; ".join(found)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _canonical_or_none(raw: Any) -> str | None:
    try:
        return canonical_json(raw)
    except ValueError:  # NaN or Infinity somewhere: poison_reasons names where
        return None


def _text_problem(text: str) -> str | None:
    try:
        check_text(text)
    except ValueError as exc:
        return str(exc)
    return None


def _visible(text: str) -> str:
    """`text` as an ASCII JSON string literal: refused characters show as \\uXXXX escapes."""
    return json.dumps(text)


def _reason(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)


def _readable_stone_id(raw: Any) -> str | None:
    """The stone id for the reject row, refused characters escaped so that the row can be stored."""
    diamond = raw.get("diamond") if isinstance(raw, dict) else None
    stone_id = diamond.get("id") if isinstance(diamond, dict) else None
    if not isinstance(stone_id, str) or not stone_id:
        return None
    return stone_id if _text_problem(stone_id) is None else _visible(stone_id)[1:-1]
