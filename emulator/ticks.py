"""Inventory changes over time: stones sold, repriced, added and put on or off hold.

A tick is deterministic given the seed, the tick number and the inventory it starts from; only the
chosen stones change, and each of them gets `updated_ms` = the tick's wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from emulator import vocab
from emulator.generate import Columns, generate


@dataclass(frozen=True)
class TickRequest:
    """Counts (int) or fractions of the live stones (float in [0, 1])."""

    sold: int | float = 0
    repriced: int | float = 0
    added: int | float = 0
    held: int | float = 0


@dataclass(frozen=True)
class TickChanges:
    sold: np.ndarray
    repriced: np.ndarray
    added: np.ndarray
    held: np.ndarray


@dataclass(frozen=True)
class TickSummary:
    """What a tick changed, by stone id (`diamond.id`), so a test can check an incremental sync exactly."""

    tick: int
    at: datetime
    sold: list[str]
    repriced: list[str]
    added: list[str]
    held: list[str]

    @property
    def changed(self) -> set[str]:
        """Stones an `updated {from: at}` query must return (sold stones have left the feed)."""
        return set(self.repriced) | set(self.added) | set(self.held)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tick": self.tick,
            "at": iso_ms(self.at),
            "sold": self.sold,
            "repriced": self.repriced,
            "added": self.added,
            "held": self.held,
        }


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _how_many(value: int | float, base: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a count or a fraction, got {value!r}")
    if isinstance(value, float):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: a fraction must lie in [0, 1], got {value}")
        return round(value * base)
    if value < 0:
        raise ValueError(f"{name}: a count must be >= 0, got {value}")
    return value


def apply_tick(
    cols: Columns, request: TickRequest, *, seed: int, tick: int, now_ms: int, labgrown_share: float
) -> tuple[Columns, TickChanges]:
    """Mutates the chosen rows of `cols` in place; returns the columns with added stones appended."""
    rng = np.random.default_rng([seed, 0x71C, tick])
    live = np.flatnonzero(cols.availability != vocab.SOLD)
    n_sold = _how_many(request.sold, len(live), "sold")
    n_repriced = _how_many(request.repriced, len(live), "repriced")
    n_held = _how_many(request.held, len(live), "held")
    n_added = _how_many(request.added, len(live), "added")
    if n_sold + n_repriced > len(live):
        raise ValueError(f"cannot sell and reprice {n_sold + n_repriced} of {len(live)} live stones")
    picked = rng.choice(live, size=n_sold + n_repriced, replace=False)
    sold, repriced = np.sort(picked[:n_sold]), np.sort(picked[n_sold:])

    # Holds toggle AVAILABLE <-> ON HOLD; memo stones and stones changed above are left alone.
    holdable = (cols.availability == vocab.AVAILABLE) | (cols.availability == vocab.ON_HOLD)
    holdable[picked] = False
    candidates = np.flatnonzero(holdable)
    if n_held > len(candidates):
        raise ValueError(f"cannot toggle {n_held} holds: only {len(candidates)} stones are available or on hold")
    held = np.sort(rng.choice(candidates, size=n_held, replace=False))

    cols.availability[sold] = vocab.SOLD
    cols.availability[held] = np.where(cols.availability[held] == vocab.AVAILABLE, vocab.ON_HOLD, vocab.AVAILABLE)
    old = cols.price_cents[repriced]
    step = rng.uniform(0.02, 0.12, len(repriced)) * rng.choice([-1.0, 1.0], len(repriced))
    new = np.maximum(np.round(old * (1.0 + step)).astype(np.int64), 1)
    cols.price_cents[repriced] = np.where(new == old, old + 1, new)  # a reprice always changes the price
    for rows in (sold, repriced, held):
        cols.updated_ms[rows] = now_ms

    first_new = len(cols)
    if n_added:
        fresh = generate(
            seed=seed,
            count=n_added,
            labgrown_share=labgrown_share,
            updated_ms=(now_ms, now_ms),
            stream=tick,  # stream 0 is the initial inventory; ticks count from 1
        )
        cols = Columns.concat([cols, fresh])
    added = np.arange(first_new, len(cols), dtype=np.int64)
    return cols, TickChanges(sold=sold, repriced=repriced, added=added, held=held)
