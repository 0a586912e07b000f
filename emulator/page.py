"""One page of stones and the vectorised derivations shared by its fields.

Every field of an item is computed as a column of n values (one numpy expression per field, not a
Python loop per stone per field); the projector then zips the columns into JSON objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np

from emulator import hostile, identity, malformed, vocab
from emulator.generate import Columns
from emulator.hashing import Salt, StoneHasher

T = TypeVar("T")
MEDIA = "https://media.nivoda-emulator.test"
CERTIFICATES = "https://certificates.nivoda-emulator.test"

# Synthetic supplier names: invented word lists, not real companies.
_NAME_HEADS = (
    "Aurum",
    "Lumen",
    "Facet",
    "Prism",
    "Stellar",
    "Radiant",
    "Solitaire",
    "Zenith",
    "Opaline",
    "Meridian",
    "Corona",
    "Halcyon",
    "Vesta",
    "Orion",
    "Lyra",
    "Cascade",
)
_NAME_TAILS = ("Gems", "Diamonds", "Stones", "Jewels", "Exports", "Impex", "Brilliants")
_LEGAL_FORMS = ("Pvt Ltd", "LLC", "BVBA", "Ltd", "DMCC", "Inc")
SUPPLIER_COUNT = 240


@dataclass(frozen=True)
class Supplier:
    id: str
    name: str
    legal_name: str
    stock_prefix: str


@lru_cache(maxsize=8)
def supplier_table(seed: int) -> tuple[Supplier, ...]:
    """The suppliers of one seed; each stone belongs to one, picked by its hash."""
    hasher = StoneHasher(seed)
    table = []
    for number in range(SUPPLIER_COUNT):
        word = hasher.word(number, Salt.SUPPLIER)
        head = _NAME_HEADS[word % len(_NAME_HEADS)]
        tail = _NAME_TAILS[(word >> 8) % len(_NAME_TAILS)]
        name = f"{head} {tail} {number + 1}"
        legal = f"{head} {tail} {_LEGAL_FORMS[(word >> 16) % len(_LEGAL_FORMS)]}"
        table.append(Supplier(hasher.uuid(number, Salt.SUPPLIER), name, legal, f"{head[:2]}{tail[0]}".upper()))
    return tuple(table)


class PageContext:
    """The stones of one page: their columns, hash words and memoised derived columns."""

    def __init__(
        self,
        hasher: StoneHasher,
        indices: np.ndarray,
        cols: Columns,
        malformed_rate: float,
        hostile_kinds: np.ndarray | None = None,
        stolen_ids: dict[int, str] | None = None,
    ) -> None:
        self.hasher = hasher
        self.indices = indices.astype(np.int64)
        self.cols = cols
        self.n = len(indices)
        self.kinds = malformed.kinds(hasher, self.indices, malformed_rate)
        self.any_malformed = bool(np.any(self.kinds != malformed.CLEAN))
        self.hostile_kinds = hostile_kinds if hostile_kinds is not None else np.full(self.n, hostile.CLEAN)
        self.any_hostile = bool(np.any(self.hostile_kinds != hostile.CLEAN))
        self.stolen_ids = stolen_ids or {}
        self._memo: dict[Any, Any] = {}

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = compute()
        return found

    def words(self, salt: Salt) -> np.ndarray:
        return self.memo(("words", salt), lambda: self.hasher.words(self.indices, salt))

    def units(self, salt: Salt) -> np.ndarray:
        return self.memo(("units", salt), lambda: self.hasher.units(self.indices, salt))

    def spelling(self, slot: int) -> np.ndarray:
        """Independent 8-bit spelling choices per field slot, from one hash word."""
        return (self.words(Salt.SPELLING) >> np.uint64(8 * slot)) & np.uint64(0xFF)

    def pick(self, salt: Salt, options: tuple[T, ...], shift: int = 0) -> list[T]:
        choice = ((self.words(salt) >> np.uint64(shift)) % np.uint64(len(options))).tolist()
        return [options[c] for c in choice]

    # -- shared derivations --------------------------------------------------------------------
    def stone_ids(self) -> list[str]:
        return self.memo("stone_ids", lambda: identity.stone_ids(self.hasher, self.indices))

    def cert_numbers(self) -> list[str]:
        return self.memo(
            "cert_numbers",
            lambda: identity.certificate_numbers(self.hasher, self.indices, self.cols.lab, self.cols.labgrown),
        )

    def suppliers(self) -> list[Supplier]:
        return self.memo("suppliers", lambda: self.pick(Salt.SUPPLIER, supplier_table(self.hasher.seed)))

    def markup_cents(self) -> np.ndarray:
        return self.memo(
            "markup",
            lambda: np.round(self.cols.price_cents * (1.04 + 0.08 * self.units(Salt.MARKUP))).astype(np.int64),
        )

    def is_round(self) -> np.ndarray:
        round_: np.ndarray = self.cols.shape == 0
        return round_

    def measurements(self) -> dict[str, np.ndarray]:
        """Millimetres and percentages consistent with carats and shape."""
        return self.memo("measurements", self._measure)

    def _measure(self) -> dict[str, np.ndarray]:
        u, v = self.units(Salt.MEASURE), self.units(Salt.DEPTH)
        ratio = np.asarray(vocab.SHAPE_LW_RATIO)[self.cols.shape] * (1.0 + 0.06 * (u - 0.5))
        diameter = 6.45 * np.cbrt(self.cols.carats_h / 100.0)  # a 1 ct round is ~6.45 mm across
        length, width = diameter * np.sqrt(ratio), diameter / np.sqrt(ratio)
        round_ = self.is_round()
        depth_pct = np.where(round_, 61.8 + 3.0 * (v - 0.5), 65.0 + 8.0 * (v - 0.5))
        table = np.where(round_, 57.0, 63.0) + np.where(round_, 4.0, 10.0) * (self.units(Salt.TABLE) - 0.5)
        a = self.units(Salt.ANGLES)
        return {
            "length": np.round(length, 2),
            "width": np.round(width, 2),
            "depth": np.round(width * depth_pct / 100.0, 2),
            "depthPercentage": np.round(depth_pct, 1),
            "table": np.round(table, 1),
            "crownAngle": np.round(34.5 + 3.0 * (a - 0.5), 1),
            "crownHeight": np.round(14.5 + 3.0 * (v - 0.5), 1),
            "pavAngle": np.round(40.9 + 0.8 * (a - 0.5), 1),
            "pavDepth": np.round(43.1 + 1.6 * (u - 0.5), 1),
        }

    def malformed_absent(self, field: tuple[str, str]) -> np.ndarray | None:
        """Rows where a malformation nulls this object field, or None when none does."""
        kind = malformed.ABSENT_OBJECTS.get(field)
        if kind is None or not self.any_malformed:
            return None
        absent: np.ndarray = self.kinds == kind
        return absent
