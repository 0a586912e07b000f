"""Stones a broken or hostile supplier serves: unstorable characters, non-finite numbers, 20 kB strings,
blank and stolen ids, absurd numbers, wrong JSON types and unknown grades.

Which stones: those whose per-stone hash unit falls below `hostile_item_rate` (fixed by the seed, only
growing with the rate), independent of `malformed_item_rate`. How each is broken is fixed by another
hash word, drawn among `hostile_kinds` (all kinds when empty), so a test can aim at one family.
NaN and Infinity leave the emulator as bare literals and lone surrogates as `\\udXXX` escapes
(`app.dumps`): what a broken supplier's JSON encoder sends.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from emulator.hashing import Salt, StoneHasher

CLEAN = -1
LONG_CHARS = 20_000
_ALPHABET = string.ascii_letters + string.digits


def _long(field: str, index: int) -> str:
    # Incompressible (a repeated letter would TOAST-compress below any index limit), stable per stone.
    rng = random.Random(f"{field}|{index}")
    return "".join(rng.choices(_ALPHABET, k=LONG_CHARS))


# Text fields the catalogue maps (shared/sync/sql/map.sql), each served 20 kB long by its own kind.
LONG_FIELDS: dict[str, tuple[str, str]] = {
    "long_offer_id": ("Item", "id"),
    "long_supplier_stock_id": ("Diamond", "supplierStockId"),
    "long_availability": ("Diamond", "availability"),
    "long_image": ("Diamond", "image"),
    "long_video": ("Diamond", "video"),
    "long_eye_clean": ("Diamond", "eyeClean"),
    "long_mine_of_origin": ("Diamond", "mine_of_origin"),
    "long_supplier_id": ("Supplier", "id"),
    "long_supplier_name": ("Supplier", "name"),
    "long_lab": ("Certificate", "lab"),
    "long_cert_number": ("Certificate", "certNumber"),
    "long_pdf_url": ("Certificate", "pdfUrl"),
    "long_shape": ("Certificate", "shape"),
    "long_color": ("Certificate", "color"),
    "long_clarity": ("Certificate", "clarity"),
    "long_cut": ("Certificate", "cut"),
    "long_polish": ("Certificate", "polish"),
    "long_symmetry": ("Certificate", "symmetry"),
    "long_flo_int": ("Certificate", "floInt"),
    "long_flo_col": ("Certificate", "floCol"),
    "long_girdle": ("Certificate", "girdle"),
    "long_culet_size": ("Certificate", "culetSize"),
    "long_labgrown_type": ("Certificate", "labgrown_type"),
    "long_fancy_color": ("Certificate", "f_color"),
    "long_fancy_intensity": ("Certificate", "f_intensity"),
    "long_fancy_overtone": ("Certificate", "f_overtone"),
}

# kind -> ((type, field), how the served value is rewritten from (value, stone index)).
_PATCHES: dict[str, tuple[tuple[str, str], Callable[[Any, int], Any]]] = {
    # Characters no PostgreSQL text or jsonb can hold, and numbers JSON does not have.
    "nul_girdle": (("Certificate", "girdle"), lambda v, _i: f"{v or 'MEDIUM'}\x00"),
    "nul_supplier_name": (("Supplier", "name"), lambda v, _i: f"\x00{v}"),
    "nul_stone_id": (("Diamond", "id"), lambda v, _i: f"{v}\x00"),
    "surrogate_shape": (("Certificate", "shape"), lambda v, _i: f"{v}\ud800"),
    "surrogate_mine_of_origin": (("Diamond", "mine_of_origin"), lambda _v, _i: "Ja\udc00neng"),
    "surrogate_offer_id": (("Item", "id"), lambda v, _i: f"\udbff{v}"),
    "nan_price": (("Item", "price"), lambda _v, _i: float("nan")),
    "nan_length": (("Certificate", "length"), lambda _v, _i: float("nan")),
    "infinity_carats": (("Certificate", "carats"), lambda _v, _i: float("inf")),
    "infinity_table": (("Certificate", "table"), lambda _v, _i: float("inf")),
    "negative_infinity_discount": (("Item", "discount"), lambda _v, _i: float("-inf")),
    # Ids that are not ids.
    "blank_stone_id": (("Diamond", "id"), lambda _v, _i: ""),
    "whitespace_stone_id": (("Diamond", "id"), lambda _v, _i: "   "),
    "control_stone_id": (("Diamond", "id"), lambda v, _i: f"\x1b[2J{v}"),
    "blank_offer_id": (("Item", "id"), lambda _v, _i: " \t "),
    # Numbers out of any plausible range.
    "zero_price": (("Item", "price"), lambda _v, _i: 0),
    "negative_price": (("Item", "price"), lambda v, _i: -abs(int(v))),
    "absurd_price": (("Item", "price"), lambda _v, _i: 10**20),
    "zero_carats": (("Certificate", "carats"), lambda _v, _i: 0),
    "tiny_carats": (("Certificate", "carats"), lambda _v, _i: 0.001),
    "huge_carats": (("Certificate", "carats"), lambda _v, _i: 999.99),
    "negative_carats": (("Certificate", "carats"), lambda v, _i: -abs(v)),
    # JSON types the schema does not promise.
    "object_shape": (("Certificate", "shape"), lambda v, _i: {"value": v}),
    "list_price": (("Item", "price"), lambda v, _i: [v]),
    "object_girdle": (("Certificate", "girdle"), lambda v, _i: {"name": v, "code": 3}),
    "list_fancy_color": (("Certificate", "f_color"), lambda v, _i: [v or "YELLOW", "BROWN"]),
    "number_stone_id": (("Diamond", "id"), lambda _v, i: 9_000_000_000 + i),
    "text_labgrown": (("Certificate", "labgrown"), lambda v, _i: "yes" if v else "no"),
    # Grades outside every vocabulary.
    "unknown_shape": (("Certificate", "shape"), lambda _v, _i: "HEXAGON-STAR"),
    "unknown_color": (("Certificate", "color"), lambda _v, _i: "Q-R"),
    "unknown_clarity": (("Certificate", "clarity"), lambda _v, _i: "SI4"),
    "unknown_lab": (("Certificate", "lab"), lambda _v, _i: "XYZ LAB"),
    "unknown_availability": (("Diamond", "availability"), lambda _v, _i: "RESERVED-MAYBE"),
}


def _long_patch(field: tuple[str, str]) -> Callable[[Any, int], Any]:
    return lambda _v, i: _long(f"{field[0]}.{field[1]}", i)


for _kind, _field in LONG_FIELDS.items():
    _PATCHES[_kind] = (_field, _long_patch(_field))

# A stone served under another stone's stone id (diamond.id): a page neighbour's, or a far stone's
# of the same kind (natural or lab-grown), which usually lies in another price band (partition).
DUPLICATE_IN_PAGE = "duplicate_id_in_page"
DUPLICATE_ACROSS = "duplicate_id_across_pages"
# The diamond object carries an extra key with a NUL in it (a key, not a value, is unstorable).
NUL_KEY = "nul_key"

KINDS: tuple[str, ...] = (*_PATCHES, DUPLICATE_IN_PAGE, DUPLICATE_ACROSS, NUL_KEY)


def check_kinds(names: Sequence[str]) -> list[str]:
    unknown = sorted(set(names) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown hostile kinds {unknown}; known: {', '.join(KINDS)}")
    return list(names)


def kinds(hasher: StoneHasher, indices: np.ndarray, rate: float, allowed: Sequence[str]) -> np.ndarray:
    """Index into KINDS per stone (int16), CLEAN for stones served as generated."""
    if rate <= 0.0 or len(indices) == 0:
        return np.full(len(indices), CLEAN, dtype=np.int16)
    pool = np.array([KINDS.index(k) for k in allowed] if allowed else range(len(KINDS)), dtype=np.int16)
    chosen = hasher.units(indices, Salt.HOSTILE) < rate
    kind = pool[(hasher.words(indices, Salt.HOSTILE_KIND) % np.uint64(len(pool))).astype(np.int64)]
    return np.where(chosen, kind, CLEAN).astype(np.int16)


def stolen_ids(
    inventory: Any,
    stones: np.ndarray,
    stone_kinds: np.ndarray,
    malformed_kinds: np.ndarray,
    clean: Callable[[np.ndarray], np.ndarray],
) -> dict[int, str]:
    """Row in the page -> the other stone's id it is served under (duplicate kinds only).

    `clean(indices)` says which stones are served as generated (neither hostile nor malformed): only
    such a stone's id is stolen, so each duplicate pairs one hostile item with one ordinary one.
    """
    stolen: dict[int, str] = {}
    rows_in_page = np.flatnonzero(stone_kinds == KINDS.index(DUPLICATE_IN_PAGE)).tolist()
    if rows_in_page:
        plain = np.flatnonzero((stone_kinds == CLEAN) & (malformed_kinds == CLEAN)).tolist()
        if plain:
            victim = inventory.stone_ids(stones[plain[:1]])[0]
            stolen.update(dict.fromkeys(rows_in_page, victim))
    rows_across = np.flatnonzero(stone_kinds == KINDS.index(DUPLICATE_ACROSS))
    if len(rows_across):
        for row, twin in zip(rows_across.tolist(), across_twins(inventory, stones[rows_across], clean), strict=True):
            if twin is not None:
                stolen[row] = inventory.stone_ids([twin])[0]
    return stolen


def across_twins(inventory: Any, indices: np.ndarray, clean: Callable[[np.ndarray], np.ndarray]) -> list[int | None]:
    """Per stone: the first live, clean stone of the same kind from half the inventory further on."""
    live = inventory.live()
    candidates = live[clean(live)]
    labgrown = inventory.columns.labgrown
    size = len(inventory)
    twins: list[int | None] = []
    for index in indices.tolist():
        same = candidates[labgrown[candidates] == labgrown[index]]
        if len(same) == 0:
            twins.append(None)
            continue
        at = int(np.searchsorted(same, (index + size // 2) % size)) % len(same)
        twins.append(int(same[at]) if int(same[at]) != index else None)
    return twins


def patch_values(
    field: tuple[str, str], values: list[Any], stone_kinds: np.ndarray, indices: np.ndarray, stolen: dict[int, str]
) -> list[Any]:
    """`values` of one field with each hostile stone's rewrite applied (a copy when anything changes)."""
    rows = np.flatnonzero(stone_kinds != CLEAN).tolist()
    out = values
    for row in rows:
        name = KINDS[int(stone_kinds[row])]
        if field == ("Diamond", "id") and row in stolen:
            value = stolen[row]
        elif name in _PATCHES and _PATCHES[name][0] == field:
            value = _PATCHES[name][1](values[row], int(indices[row]))
        else:
            continue
        if out is values:
            out = list(values)
        out[row] = value
    return out


def add_keys(type_name: str, rows: list[dict[str, Any] | None], stone_kinds: np.ndarray) -> None:
    if type_name != "Diamond":
        return
    for row in np.flatnonzero(stone_kinds == KINDS.index(NUL_KEY)).tolist():
        diamond = rows[row]
        if diamond is not None:
            diamond["supplier_note\x00"] = "kept"
