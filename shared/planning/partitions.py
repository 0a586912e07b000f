"""Balanced contiguous partitions from a density scan.

Partitions are runs of adjacent bands, so together they tile [0, inf) with no gap and no overlap,
and their expected counts sum to the scan total. Cuts go at the band edges nearest to the ideal
equal split; a band is never split (it is as fine as the scan made it), so a single dense band
(every stone at one price) stays one partition however large it is.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate

from pydantic import BaseModel, Field

from shared.feed.source import PriceBand
from shared.planning.scan import Band


class Partition(BaseModel):
    partition_no: int = Field(ge=0)
    dpc_from: int = Field(ge=0)
    dpc_to: int | None
    expected_count: int = Field(ge=0)

    @property
    def price_band(self) -> PriceBand:
        return PriceBand(self.dpc_from, self.dpc_to)


def partition_count(total: int, *, target_size: int, max_partitions: int) -> int:
    """How many partitions: enough for target_size stones each, at most max_partitions, at least 1."""
    return max(1, min(max_partitions, math.ceil(total / target_size)))


def group(bands: list[Band], parts: int) -> list[Partition]:
    """Group adjacent bands into at most `parts` partitions of near-equal stone counts."""
    if not bands:
        raise ValueError("a scan has at least one band")
    if bands[0].dpc_from != 0 or bands[-1].dpc_to is not None:
        raise ValueError("bands must tile [0, inf)")
    cumulative = list(accumulate(band.count for band in bands))
    total = cumulative[-1]
    cuts: list[int] = []  # cut after these band indices
    for j in range(1, parts):
        ideal = total * j / parts
        nearest = bisect_left(cumulative, ideal)
        candidates = [c for c in (nearest - 1, nearest) if 0 <= c < len(bands) - 1]
        candidates = [c for c in candidates if _opens_nonempty(cumulative, cuts, c, total)]
        if candidates:
            cuts.append(min(candidates, key=lambda c: abs(cumulative[c] - ideal)))
    partitions = []
    start = 0
    for number, end in enumerate([*cuts, len(bands) - 1]):
        below = cumulative[start - 1] if start else 0
        partitions.append(
            Partition(
                partition_no=number,
                dpc_from=bands[start].dpc_from,
                dpc_to=bands[end].dpc_to,
                expected_count=cumulative[end] - below,
            )
        )
        start = end + 1
    return partitions


def _opens_nonempty(cumulative: list[int], cuts: list[int], cut: int, total: int) -> bool:
    """A cut is useful only if the partition it closes and the rest after it both hold stones."""
    previous = cumulative[cuts[-1]] if cuts else 0
    return (not cuts or cut > cuts[-1]) and previous < cumulative[cut] < total


def balance(partitions: list[Partition]) -> float:
    """Largest partition over the mean (1.0 is perfect); 1.0 for an empty plan."""
    counts = [p.expected_count for p in partitions]
    mean = sum(counts) / len(counts)
    return max(counts) / mean if mean else 1.0
