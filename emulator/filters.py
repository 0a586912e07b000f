"""`DiamondQuery` and `DiamondOrder` arguments turned into a canonical, hashable filter and order.

Semantics (what a client can rely on, and what the tests check):
- Every range is HALF-OPEN, `from <= x < to`; either bound may be omitted or null (open-ended).
- `sizes` is in carats; a stone matches if it falls in ANY of the listed ranges (a single object is
  coerced to a one-element list by GraphQL). Carats have 2 decimals and are compared exactly in
  hundredths: `carats_h >= ceil(from * 100)` and `carats_h < ceil(to * 100)`.
- `dollar_value` is the total price in WHOLE dollars: `from * 100 <= price_cents < to * 100`.
- `dollar_per_carat` is `price_cents / 100 / carats`, compared exactly in integers:
  `price_cents >= from * carats_h` and `price_cents < to * carats_h`.
- `updated` takes ISO-8601 timestamps (no offset means UTC), compared at millisecond resolution.
- List filters (`shapes`, `color`, `clarity`, `cut`, `polish`, `symmetry`, `availability`) match the
  canonical grade, whatever spelling the client sends; an empty list means no restriction. An
  unknown grade is refused (BAD_USER_INPUT); an unknown shape simply matches nothing, because real
  feeds carry more shapes than this inventory. Fancy-coloured stones match no `color` list.
- `has_image` / `has_v360` / `excludeFairPoorCuts` / `hide_memo` restrict when true; false or null
  means no restriction. `labgrown` true/false selects lab-grown/natural; null means both.
- `excludeFairPoorCuts` drops FAIR and POOR cuts and keeps stones without a cut grade.
- `ids` take stone ids (`diamond.id`) or offer ids (item `id`); `certificate_numbers` take
  `certificate.certNumber`. Unknown values match nothing. All filters combine with AND.
- SOLD stones never match anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

import numpy as np

from emulator import vocab
from emulator.errors import QueryInputError
from emulator.generate import Columns

ORDER_TYPES = ("createdAt", "price", "size", "discount", "none")


@dataclass(frozen=True)
class Band:
    """Half-open `[lo, hi)` on an integer scale; None is an open end."""

    lo: int | None = None
    hi: int | None = None

    def mask(self, values: np.ndarray, scale: np.ndarray | int = 1) -> np.ndarray:
        """`lo * scale <= values < hi * scale`, all in integers."""
        result = np.ones(len(values), dtype=bool)
        if self.lo is not None:
            result &= values >= np.int64(self.lo) * scale
        if self.hi is not None:
            result &= values < np.int64(self.hi) * scale
        return result


@dataclass(frozen=True)
class StoneFilter:
    """Canonical form of a DiamondQuery; equal queries give equal (hashable) filters."""

    labgrown: bool | None = None
    shapes: tuple[int, ...] | None = None
    carats_h: tuple[Band, ...] | None = None
    color: tuple[int, ...] | None = None
    clarity: tuple[int, ...] | None = None
    cut: tuple[int, ...] | None = None
    polish: tuple[int, ...] | None = None
    symmetry: tuple[int, ...] | None = None
    has_image: bool = False
    has_v360: bool = False
    availability: tuple[int, ...] | None = None
    exclude_fair_poor_cuts: bool = False
    hide_memo: bool = False
    dollar_value: Band | None = None
    dollar_per_carat: Band | None = None
    updated_ms: Band | None = None
    stones: tuple[int, ...] | None = None

    @cached_property
    def is_price_band_only(self) -> bool:
        """True when only `labgrown` and `dollar_per_carat` restrict: the planner's O(log n) case."""
        rest = {f.name: getattr(self, f.name) for f in fields(self)} | {"labgrown": None, "dollar_per_carat": None}
        return StoneFilter(**rest) == StoneFilter()

    def mask(self, cols: Columns) -> np.ndarray:
        """Boolean mask of the stones that match (SOLD stones never do)."""
        keep: np.ndarray = cols.availability != vocab.SOLD
        if self.stones is not None:
            chosen = np.zeros(len(cols), dtype=bool)
            chosen[np.asarray(self.stones, dtype=np.int64)] = True
            keep &= chosen
        if self.labgrown is not None:
            keep &= cols.labgrown == self.labgrown
        for name in ("shapes", "color", "clarity", "cut", "polish", "symmetry", "availability"):
            codes = getattr(self, name)
            if codes is not None:
                keep &= _member(getattr(cols, _COLUMN_OF.get(name, name)), codes)
        if self.carats_h is not None:
            keep &= np.logical_or.reduce([band.mask(cols.carats_h) for band in self.carats_h])
        if self.has_image:
            keep &= cols.has_image
        if self.has_v360:
            keep &= cols.has_v360
        if self.exclude_fair_poor_cuts:
            keep &= ~_member(cols.cut, vocab.FAIR_OR_POOR)
        if self.hide_memo:
            keep &= cols.availability != vocab.MEMO
        if self.dollar_value is not None:
            keep &= self.dollar_value.mask(cols.price_cents, 100)
        if self.dollar_per_carat is not None:
            keep &= self.dollar_per_carat.mask(cols.price_cents, cols.carats_h.astype(np.int64))
        if self.updated_ms is not None:
            keep &= self.updated_ms.mask(cols.updated_ms)
        return keep


_COLUMN_OF = {"shapes": "shape"}


def _member(column: np.ndarray, codes: tuple[int, ...]) -> np.ndarray:
    # A 256-entry lookup table beats np.isin on int8 codes; NO_GRADE (-1) reads as 255 -> False.
    table = np.zeros(256, dtype=bool)
    table[[c for c in codes if c >= 0]] = True
    return table[column.view(np.uint8)]


@dataclass(frozen=True)
class StoneOrder:
    """A stable order: ties are always broken by creation order, ascending."""

    type: str = "createdAt"
    descending: bool = False


def parse_order(raw: dict[str, Any] | None) -> StoneOrder:
    raw = raw or {}
    kind = raw.get("type") or "createdAt"
    if kind not in ORDER_TYPES:
        raise QueryInputError(f"unknown order type {kind!r}; expected one of {', '.join(ORDER_TYPES)}")
    if kind == "none":
        return StoneOrder()
    return StoneOrder(kind, raw.get("direction") == "DESC")


def parse_query(raw: dict[str, Any] | None, resolve_ids: Any) -> StoneFilter:
    """Canonical filter of a coerced DiamondQuery. `resolve_ids(ids, cert_numbers)` -> indices."""
    raw = raw or {}
    ids, certs = raw.get("ids"), raw.get("certificate_numbers")
    return StoneFilter(
        labgrown=raw.get("labgrown"),
        shapes=_shapes(raw.get("shapes")),
        carats_h=_sizes(raw.get("sizes")),
        color=_grades(raw.get("color"), vocab.COLORS, "color"),
        clarity=_grades(raw.get("clarity"), vocab.CLARITIES, "clarity"),
        cut=_grades(raw.get("cut"), vocab.GRADES, "cut"),
        polish=_grades(raw.get("polish"), vocab.GRADES, "polish"),
        symmetry=_grades(raw.get("symmetry"), vocab.GRADES, "symmetry"),
        has_image=bool(raw.get("has_image")),
        has_v360=bool(raw.get("has_v360")),
        availability=_grades(raw.get("availability"), vocab.AVAILABILITY, "availability"),
        exclude_fair_poor_cuts=bool(raw.get("excludeFairPoorCuts")),
        hide_memo=bool(raw.get("hide_memo")),
        dollar_value=_band(raw.get("dollar_value")),
        dollar_per_carat=_band(raw.get("dollar_per_carat")),
        updated_ms=_updated(raw.get("updated")),
        stones=None if ids is None and certs is None else tuple(resolve_ids(ids, certs)),
    )


def _shapes(values: list[str] | None) -> tuple[int, ...] | None:
    if not values:
        return None
    codes, _unknown = vocab.codes_of(vocab.SHAPES, values)
    return codes  # unknown shapes exist in real feeds: they match nothing rather than fail


def _grades(values: list[str] | None, vocabulary: vocab.Vocabulary, argument: str) -> tuple[int, ...] | None:
    if not values:
        return None
    codes, unknown = vocab.codes_of(vocabulary, values)
    if unknown:
        accepted = ", ".join(vocabulary.canonical)
        raise QueryInputError(f"unknown {argument} value(s) {unknown}; accepted: {accepted}")
    return codes


def _band(raw: dict[str, Any] | None) -> Band | None:
    if raw is None:
        return None
    return Band(raw.get("from"), raw.get("to"))


def _sizes(raw: list[dict[str, Any]] | None) -> tuple[Band, ...] | None:
    if not raw:
        return None
    return tuple(sorted({Band(_hundredths(r.get("from")), _hundredths(r.get("to"))) for r in raw}, key=repr))


def _hundredths(carats: float | None) -> int | None:
    # For integer c: c >= x <=> c >= ceil(x) and c < x <=> c < ceil(x); Decimal(repr) keeps 1.5 exact.
    return None if carats is None else math.ceil(Decimal(repr(float(carats))) * 100)


def _updated(raw: dict[str, Any] | None) -> Band | None:
    if raw is None:
        return None
    return Band(_epoch_ms(raw.get("from")), _epoch_ms(raw.get("to")))


def _epoch_ms(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise QueryInputError(f"updated: {text!r} is not an ISO-8601 timestamp") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000)  # ceil, for the same reason as _hundredths
