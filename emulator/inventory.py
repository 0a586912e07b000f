"""The supplier's inventory: numpy columns, filtered and ordered queries, and ticks.

Query cost is kept off the paging path: the ordered index array of recent (filter, order) pairs is
kept in a small LRU, so paging through a partition costs a slice. Count queries that filter only on
`labgrown` and `dollar_per_carat` (hundreds of them from a partition planner) are answered in
O(log n) from a per-flag index sorted by price per carat. Both are invalidated by a tick.

Thread safety: the HTTP server runs in its own thread while tests call `tick()` directly, so every
read and write of the columns happens under one lock; `gather()` hands out copies.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from emulator import identity, vocab
from emulator.config import DEFAULT_BASE_TIME, EmulatorConfig
from emulator.filters import Band, StoneFilter, StoneOrder
from emulator.generate import DAY_MS, HISTORY_DAYS, Columns, generate
from emulator.hashing import StoneHasher
from emulator.ticks import TickRequest, TickSummary, apply_tick

_CACHE_ELEMENTS = 16_000_000  # ordered index arrays kept, in stones (int32: 64 MB)
_CACHE_COUNTS = 8_192  # counts of filters off the O(log n) path


@dataclass(frozen=True)
class _PriceIndex:
    """Live stones of one labgrown flag, sorted by dollars per carat (ties by creation order)."""

    keys: np.ndarray  # float64 price_cents / carats_h; exact against integer bounds, see _bounds
    stones: np.ndarray

    @classmethod
    def build(cls, cols: Columns, live: np.ndarray, flag: bool) -> _PriceIndex:
        stones = np.flatnonzero(live & (cols.labgrown == flag))
        keys = cols.price_cents[stones] / cols.carats_h[stones]
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], stones[order])

    def bounds(self, band: Band | None) -> tuple[int, int]:
        # price/carats is correctly rounded and differs from any integer by >= 1/1500 when not equal
        # to it, far above float64 resolution, so comparing the float key with integer bounds is exact.
        if band is None:
            return 0, len(self.keys)
        lo = 0 if band.lo is None else int(np.searchsorted(self.keys, band.lo, side="left"))
        hi = len(self.keys) if band.hi is None else int(np.searchsorted(self.keys, band.hi, side="left"))
        return lo, max(lo, hi)


class Inventory:
    """Stones of one seed. Stone `i` is row `i` of the columns; row order is creation order."""

    def __init__(self, columns: Columns, *, seed: int, labgrown_share: float) -> None:
        self.seed = seed
        self.labgrown_share = labgrown_share  # of the stones ticks add
        self.hasher = StoneHasher(seed)
        self._cols = columns
        self._lock = threading.RLock()
        self._ticks = 0
        self._ordered: OrderedDict[tuple[StoneFilter, StoneOrder], np.ndarray] = OrderedDict()
        self._counts: OrderedDict[StoneFilter, int] = OrderedDict()
        self._price_index: dict[bool, _PriceIndex] | None = None

    @classmethod
    def generate(
        cls, *, size: int, seed: int = 7, labgrown_share: float = 0.55, base_time: datetime = DEFAULT_BASE_TIME
    ) -> Inventory:
        end = int(base_time.timestamp() * 1000)
        columns = generate(
            seed=seed, count=size, labgrown_share=labgrown_share, updated_ms=(end - HISTORY_DAYS * DAY_MS, end)
        )
        return cls(columns, seed=seed, labgrown_share=labgrown_share)

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> Inventory:
        return cls.generate(
            size=config.size, seed=config.seed, labgrown_share=config.labgrown_share, base_time=config.base_time
        )

    # -- reading ------------------------------------------------------------------------------
    @property
    def columns(self) -> Columns:
        """The live column arrays: read them, do not write them (use `tick`)."""
        return self._cols

    def __len__(self) -> int:
        """Stones ever created, sold ones included."""
        return len(self._cols)

    @property
    def ticks(self) -> int:
        return self._ticks

    def gather(self, indices: np.ndarray) -> Columns:
        """A consistent copy of the given stones' columns."""
        with self._lock:
            return self._cols.take(indices)

    def stone_ids(self, indices: Iterable[int] | np.ndarray) -> list[str]:
        array = indices if isinstance(indices, np.ndarray) else np.fromiter(indices, dtype=np.int64)
        return identity.stone_ids(self.hasher, array)

    def resolve_ids(self, ids: Iterable[str] | None, cert_numbers: Iterable[str] | None) -> list[int]:
        with self._lock:
            cols = self._cols
            return identity.resolve(self.hasher, len(cols), cols.lab, cols.labgrown, ids, cert_numbers)

    def live(self) -> np.ndarray:
        """Indices of the stones currently in the feed (not sold)."""
        with self._lock:
            return np.flatnonzero(self._cols.availability != vocab.SOLD)

    def truth(self, labgrown: bool | None = None) -> int:
        """Stones currently in the feed (not sold), optionally of one kind."""
        with self._lock:
            live = self._cols.availability != vocab.SOLD
            if labgrown is not None:
                live &= self._cols.labgrown == labgrown
            return int(np.count_nonzero(live))

    def count(self, query: StoneFilter) -> int:
        with self._lock:
            if query.is_price_band_only:
                total = 0
                for flag in self._flags(query):
                    lo, hi = self._band_slice(flag, query)
                    total += hi - lo
                return total
            cached = self._counts.get(query)
            if cached is None:
                cached = self._counts[query] = int(np.count_nonzero(query.mask(self._cols)))
                if len(self._counts) > _CACHE_COUNTS:
                    self._counts.popitem(last=False)
            return cached

    def ordered(self, query: StoneFilter, order: StoneOrder) -> np.ndarray:
        """Indices of the matching stones in `order` (ties by creation order). Do not modify."""
        key = (query, order)
        with self._lock:
            found = self._ordered.get(key)
            if found is not None:
                self._ordered.move_to_end(key)
                return found
            found = self._sort(self._matching(query), order).astype(np.int32 if len(self._cols) < 2**31 else np.int64)
            self._remember(key, found)
            return found

    # -- changing -----------------------------------------------------------------------------
    def tick(
        self,
        *,
        sold: int | float = 0,
        repriced: int | float = 0,
        added: int | float = 0,
        held: int | float = 0,
        now: datetime | None = None,
    ) -> TickSummary:
        """Sell, reprice, add and toggle holds; counts (int) or fractions of live stones (float)."""
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        now_ms = int(moment.timestamp() * 1000)
        moment = datetime.fromtimestamp(now_ms / 1000, UTC)  # the summary says exactly what was stored
        with self._lock:
            tick = self._ticks + 1
            cols, changes = apply_tick(
                self._cols,
                TickRequest(sold=sold, repriced=repriced, added=added, held=held),
                seed=self.seed,
                tick=tick,
                now_ms=now_ms,
                labgrown_share=self.labgrown_share,
            )
            self._cols, self._ticks = cols, tick
            self._ordered.clear()
            self._counts.clear()
            self._price_index = None
        return TickSummary(
            tick=tick,
            at=moment,
            sold=self.stone_ids(changes.sold),
            repriced=self.stone_ids(changes.repriced),
            added=self.stone_ids(changes.added),
            held=self.stone_ids(changes.held),
        )

    # -- internals (called with the lock held) ------------------------------------------------
    @staticmethod
    def _flags(query: StoneFilter) -> tuple[bool, ...]:
        return (False, True) if query.labgrown is None else (query.labgrown,)

    def _band_slice(self, flag: bool, query: StoneFilter) -> tuple[int, int]:
        if self._price_index is None:
            live = self._cols.availability != vocab.SOLD
            self._price_index = {f: _PriceIndex.build(self._cols, live, f) for f in (False, True)}
        return self._price_index[flag].bounds(query.dollar_per_carat)

    def _matching(self, query: StoneFilter) -> np.ndarray:
        """Matching stones in creation order."""
        if query.is_price_band_only:
            parts = []
            for flag in self._flags(query):
                lo, hi = self._band_slice(flag, query)
                assert self._price_index is not None  # _band_slice built it
                parts.append(self._price_index[flag].stones[lo:hi])
            return np.sort(np.concatenate(parts))
        return np.flatnonzero(query.mask(self._cols))

    def _sort(self, stones: np.ndarray, order: StoneOrder) -> np.ndarray:
        if order.type == "createdAt":
            return stones[::-1].copy() if order.descending else stones
        cols = self._cols
        if order.type == "price":
            key = cols.price_cents[stones]
        elif order.type == "size":
            key = cols.carats_h[stones].astype(np.int64)
        else:
            key = discount_bp(cols.price_cents[stones], cols.list_cents[stones])
        # Stable sort of a creation-ordered array: ties keep creation order in both directions.
        return stones[np.argsort(-key if order.descending else key, kind="stable")]

    def _remember(self, key: tuple[StoneFilter, StoneOrder], stones: np.ndarray) -> None:
        self._ordered[key] = stones
        total = sum(len(v) for v in self._ordered.values())
        while total > _CACHE_ELEMENTS and len(self._ordered) > 1:
            _, dropped = self._ordered.popitem(last=False)
            total -= len(dropped)


def discount_bp(price_cents: np.ndarray, list_cents: np.ndarray) -> np.ndarray:
    """Discount to the list price in basis points (-3550 = -35.50 %): what item `discount` serves."""
    discount: np.ndarray = np.round((price_cents / list_cents - 1.0) * 10_000).astype(np.int64)
    return discount
