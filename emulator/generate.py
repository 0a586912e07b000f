"""Vectorised generation of the filterable stone columns.

Stones are generated in fixed-size chunks, each from its own seed sequence `(seed, stream, chunk)`;
a chunk is always drawn whole and then cut, so a 100k inventory is exactly the first 100k stones of
the 1M inventory with the same seed, and stones added by a tick (`stream` = the tick) never disturb
the others.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from emulator import vocab

CHUNK = 1 << 15
INITIAL_STREAM = 0
DAY_MS = 86_400_000
HISTORY_DAYS = 90


@dataclass
class Columns:
    """Struct-of-arrays: stone `i` is row `i` of every array; row order is creation order."""

    carats_h: np.ndarray  # int32, carats in hundredths (exact)
    price_cents: np.ndarray  # int64
    list_cents: np.ndarray  # int64, the supplier's list (rap) price; discount derives from it
    shape: np.ndarray  # int8 codes, see vocab
    color: np.ndarray  # int8, NO_GRADE for fancy colours
    clarity: np.ndarray
    cut: np.ndarray  # NO_GRADE for many fancy shapes
    polish: np.ndarray
    symmetry: np.ndarray
    fluorescence: np.ndarray
    lab: np.ndarray
    availability: np.ndarray
    labgrown: np.ndarray  # bool
    has_image: np.ndarray
    has_v360: np.ndarray
    updated_ms: np.ndarray  # int64 epoch milliseconds, UTC

    def __len__(self) -> int:
        return len(self.carats_h)

    @classmethod
    def concat(cls, parts: list[Columns]) -> Columns:
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def take(self, indices: np.ndarray) -> Columns:
        return Columns(**{f.name: getattr(self, f.name)[indices] for f in fields(self)})

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self))


def generate(
    *, seed: int, count: int, labgrown_share: float, updated_ms: tuple[int, int], stream: int = INITIAL_STREAM
) -> Columns:
    """`count` stones; `updated_ms` is the half-open window their update times are drawn from."""
    parts = []
    for chunk, start in enumerate(range(0, count, CHUNK)):
        whole = _chunk(np.random.default_rng([seed, stream, chunk]), CHUNK, labgrown_share, updated_ms)
        parts.append(whole if count - start >= CHUNK else whole.take(np.arange(count - start)))
    return Columns.concat(parts) if parts else _chunk(np.random.default_rng(0), 0, labgrown_share, updated_ms)


def _categorical(rng: np.random.Generator, weights: tuple[float, ...], n: int) -> np.ndarray:
    cumulative = np.cumsum(weights) / sum(weights)
    return np.minimum(np.searchsorted(cumulative, rng.random(n), side="right"), len(weights) - 1).astype(np.int8)


def _split(
    rng: np.random.Generator, lab: np.ndarray, natural: tuple[float, ...], grown: tuple[float, ...]
) -> np.ndarray:
    """A categorical draw with different weights for lab-grown and natural stones."""
    n = len(lab)
    return np.where(lab, _categorical(rng, grown, n), _categorical(rng, natural, n)).astype(np.int8)


# Popular weights: real inventories cluster just above these (a 1.01 ct sells better than a 0.99).
_MAGIC_CARATS = np.array([0.30, 0.40, 0.50, 0.70, 0.90, 1.00, 1.20, 1.50, 2.00, 3.00, 4.00, 5.00])
# Log price-per-carat adjustments by colour D..M and clarity FL..I3.
_COLOR_ADJ = np.array([0.45, 0.30, 0.20, 0.10, 0.0, -0.12, -0.25, -0.40, -0.50, -0.60])
_CLARITY_ADJ = np.array([0.60, 0.45, 0.30, 0.20, 0.10, 0.0, -0.12, -0.28, -0.60, -0.90, -1.10])


def _carats(rng: np.random.Generator, lab: np.ndarray) -> np.ndarray:
    n = len(lab)
    centre = np.where(lab, np.log(1.1), np.log(0.62))
    carats = np.exp(centre + rng.normal(0.0, 0.55, n))
    big = rng.random(n) < 0.03  # a separate population of large stones makes the tail towards 15 ct
    carats = np.where(big, np.exp(rng.normal(np.log(2.6), 0.55, n)), carats)
    snap = rng.random(n) < 0.35
    magic = _MAGIC_CARATS[np.clip(np.searchsorted(_MAGIC_CARATS, carats), 0, len(_MAGIC_CARATS) - 1)]
    carats = np.where(snap & (magic - carats < 0.08), magic + rng.integers(0, 4, n) / 100, carats)
    return np.clip(np.round(carats * 100), 18, 1500).astype(np.int32)


def _price_per_carat(
    rng: np.random.Generator, lab: np.ndarray, carats_h: np.ndarray, color: np.ndarray, clarity: np.ndarray
) -> np.ndarray:
    """Dollars per carat: dense below $5k for naturals with a tail to $100k; lab-grown mostly < $250."""
    n = len(lab)
    log_ct = np.log(carats_h / 100.0)
    color_adj = np.where(color >= 0, _COLOR_ADJ[np.maximum(color, 0)], rng.normal(0.6, 0.8, n))
    clarity_adj = _CLARITY_ADJ[clarity]
    natural = np.log(3000.0) + 0.85 * log_ct + color_adj + clarity_adj + rng.normal(0.0, 0.35, n)
    natural += np.where(rng.random(n) < 0.02, rng.exponential(1.3, n), 0.0)
    grown = np.log(135.0) + 0.30 * log_ct + 0.3 * (color_adj + clarity_adj) + rng.normal(0.0, 0.45, n)
    grown += np.where(rng.random(n) < 0.03, rng.exponential(1.0, n), 0.0)
    prices: np.ndarray = np.where(
        lab, np.clip(np.exp(grown), 40.0, 5_000.0), np.clip(np.exp(natural), 250.0, 100_000.0)
    )
    return prices


def _chunk(rng: np.random.Generator, n: int, labgrown_share: float, updated_ms: tuple[int, int]) -> Columns:
    lab = rng.random(n) < labgrown_share
    shape = _categorical(rng, vocab.SHAPE_WEIGHTS, n)
    carats_h = _carats(rng, lab)
    color = _split(rng, lab, (8, 12, 15, 17, 15, 12, 9, 6, 4, 2), (18, 22, 20, 16, 10, 7, 4, 2, 0.6, 0.4))
    fancy = rng.random(n) < np.where(lab, 0.03, 0.02)
    color = np.where(fancy, vocab.NO_GRADE, color).astype(np.int8)
    clarity = _split(rng, lab, (0.5, 2, 5, 8, 14, 18, 20, 16, 10, 4, 2.5), (0.5, 5, 16, 20, 22, 20, 11, 4, 1, 0.3, 0.2))
    grades_natural, grades_grown = (55, 28, 12, 4, 1), (80, 15, 4, 0.8, 0.2)
    cut = _split(rng, lab, grades_natural, grades_grown)
    cut = np.where((shape != 0) & (rng.random(n) < 0.5), vocab.NO_GRADE, cut).astype(np.int8)
    ppc = _price_per_carat(rng, lab, carats_h, color, clarity)
    price_cents = np.round(ppc * carats_h).astype(np.int64)  # $/ct x hundredths of a carat = cents
    # Discount to the list (rap) price: naturals trade a little under list, lab-grown far under it.
    discount = np.where(
        lab, np.clip(rng.normal(-0.82, 0.06, n), -0.95, -0.5), np.clip(rng.normal(-0.30, 0.15, n), -0.7, 0.25)
    )
    has_image = rng.random(n) < 0.92
    start, end = updated_ms
    return Columns(
        carats_h=carats_h,
        price_cents=price_cents,
        list_cents=np.maximum(np.round(price_cents / (1.0 + discount)), 1).astype(np.int64),
        shape=shape,
        color=color,
        clarity=clarity,
        cut=cut,
        polish=_split(rng, lab, grades_natural, grades_grown),
        symmetry=_split(rng, lab, grades_natural, grades_grown),
        fluorescence=_split(rng, lab, (60, 20, 12, 6, 2), (95, 5, 0, 0, 0)),
        lab=_split(rng, lab, (75, 10, 10, 5), (10, 70, 0, 20)),
        availability=_categorical(rng, (90, 7, 3), n),
        labgrown=lab,
        has_image=has_image,
        has_v360=rng.random(n) < np.where(has_image, 0.88, 0.4),
        updated_ms=rng.integers(start, end, n, dtype=np.int64) if end > start else np.full(n, start, np.int64),
    )
