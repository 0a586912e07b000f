"""Stones the supplier always serves broken, as real feeds do.

Which stones: those whose per-stone hash unit falls below `malformed_item_rate`, so the set is fixed
by the seed and only grows as the rate grows. How each is broken is fixed by another hash word.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any

import numpy as np

from emulator.hashing import Salt, StoneHasher

CLEAN = -1


class Malformation(IntEnum):
    MISSING_CERTIFICATE = 0
    NEGATIVE_PRICE = 1
    TEXT_PRICE = 2
    NULL_CARATS = 3
    TEXT_CARATS = 4
    MISSING_STONE_ID = 5
    UNKNOWN_SHAPE = 6


def kinds(hasher: StoneHasher, indices: np.ndarray, rate: float) -> np.ndarray:
    """Malformation per stone (int8), CLEAN for well-formed stones."""
    if rate <= 0.0 or len(indices) == 0:
        return np.full(len(indices), CLEAN, dtype=np.int8)
    chosen = hasher.units(indices, Salt.MALFORMED) < rate
    kind = (hasher.words(indices, Salt.MALFORMED_KIND) % np.uint64(len(Malformation))).astype(np.int8)
    return np.where(chosen, kind, CLEAN).astype(np.int8)


# (type, field) -> how each malformation that touches that field rewrites the served value.
VALUE_PATCHES: dict[tuple[str, str], dict[Malformation, Callable[[Any], Any]]] = {
    ("Item", "price"): {
        Malformation.NEGATIVE_PRICE: lambda cents: -cents,
        Malformation.TEXT_PRICE: lambda cents: f"{cents / 100:,.2f} USD",
    },
    ("Certificate", "carats"): {
        Malformation.NULL_CARATS: lambda _carats: None,
        Malformation.TEXT_CARATS: lambda _carats: "abc",
    },
    ("Diamond", "id"): {Malformation.MISSING_STONE_ID: lambda _id: None},
    ("Certificate", "shape"): {Malformation.UNKNOWN_SHAPE: lambda _shape: "TRILLIANT-X"},
}
# (type, field) of object fields that malformations make null.
ABSENT_OBJECTS: dict[tuple[str, str], Malformation] = {("Diamond", "certificate"): Malformation.MISSING_CERTIFICATE}


def patch_values(field: tuple[str, str], values: list[Any], stone_kinds: np.ndarray) -> list[Any]:
    patches = VALUE_PATCHES.get(field)
    if not patches:
        return values
    for row in np.flatnonzero(stone_kinds != CLEAN).tolist():
        rewrite = patches.get(Malformation(int(stone_kinds[row])))
        if rewrite is not None:
            values[row] = rewrite(values[row])
    return values
