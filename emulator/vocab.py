"""The supplier's grade vocabularies: canonical codes for filtering, varied spellings for serving.

Stones store small integer codes. Filters are matched on the canonical grade, whatever spelling a
client sends (`VG`, `very_good`, `Very Good`). Items are served in the spellings real suppliers mix
(`EX` / `EXCELLENT` / `Excellent`), chosen per stone and stable across requests, so a downstream
normaliser has real work to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

NO_GRADE = -1
"""Code of an absent grade (cut of many fancy shapes; colour of a fancy-coloured stone)."""

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalise_token(token: str) -> str:
    """`very_good ` -> `VERY GOOD`: the form aliases are looked up in."""
    return _SEPARATORS.sub(" ", token.strip()).upper()


@dataclass(frozen=True)
class Vocabulary:
    """One closed set of grades: `spellings[code][0]` is the canonical name."""

    name: str
    spellings: tuple[tuple[str, ...], ...]
    extra_aliases: dict[str, int] = field(default_factory=dict)

    @property
    def canonical(self) -> tuple[str, ...]:
        return tuple(variants[0] for variants in self.spellings)

    @cached_property
    def aliases(self) -> dict[str, int]:
        """Normalised spelling -> code: every served spelling, plus extra spellings clients send."""
        found = {normalise_token(s): code for code, variants in enumerate(self.spellings) for s in variants}
        found.update({normalise_token(alias): code for alias, code in self.extra_aliases.items()})
        return found

    def code(self, token: str) -> int | None:
        """Code of a client-sent value, or None when it names no grade of this vocabulary."""
        return self.aliases.get(normalise_token(token))

    def spell(self, codes: np.ndarray, words: np.ndarray) -> list[str | None]:
        """Per-stone spelling: `words` (per-stone hash words) pick the variant deterministically."""
        table = self.spellings
        return [
            None if c < 0 else table[c][w % len(table[c])]
            for c, w in zip(codes.tolist(), words.tolist(), strict=True)
        ]


SHAPES = Vocabulary(
    "shape",
    (
        ("ROUND", "Round", "RD", "ROUND BRILLIANT"),
        ("OVAL", "Oval", "OV"),
        ("CUSHION", "Cushion", "CUSHION MODIFIED", "CU"),
        ("PRINCESS", "Princess", "PR"),
        ("EMERALD", "Emerald", "EM"),
        ("PEAR", "Pear", "PS"),
        ("RADIANT", "Radiant", "RAD"),
        ("MARQUISE", "Marquise", "MQ"),
        ("ASSCHER", "Asscher", "AS"),
        ("HEART", "Heart", "HS"),
    ),
)
SHAPE_WEIGHTS = (0.50, 0.12, 0.08, 0.07, 0.06, 0.06, 0.05, 0.02, 0.02, 0.02)
# Length-to-width ratio per shape, for plausible measurements.
SHAPE_LW_RATIO = (1.0, 1.4, 1.1, 1.0, 1.4, 1.6, 1.25, 2.0, 1.0, 1.0)

COLORS = Vocabulary("color", tuple((c,) for c in "DEFGHIJKLM"))
CLARITIES = Vocabulary(
    "clarity",
    tuple((c,) for c in ("FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "I1", "I2", "I3")),
    extra_aliases={"FLAWLESS": 0, "INTERNALLY FLAWLESS": 1},
)
GRADES = Vocabulary(
    "grade",
    (
        ("EXCELLENT", "EX", "Excellent"),
        ("VERY GOOD", "VG", "Very Good"),
        ("GOOD", "G", "Good"),
        ("FAIR", "F", "Fair"),
        ("POOR", "P", "Poor"),
    ),
    extra_aliases={"V GOOD": 1, "VGOOD": 1},
)
FAIR_OR_POOR = (3, 4)
FLUORESCENCE = Vocabulary(
    "fluorescence",
    (
        ("NONE", "None", "NON"),
        ("FAINT", "Faint", "FNT"),
        ("MEDIUM", "Medium", "MED"),
        ("STRONG", "Strong", "STG"),
        ("VERY STRONG", "Very Strong", "VST"),
    ),
)
LABS = Vocabulary("lab", (("GIA",), ("IGI",), ("HRD",), ("GCAL",)))
AVAILABILITY = Vocabulary(
    "availability",
    (("AVAILABLE",), ("ON HOLD", "HOLD"), ("MEMO",), ("SOLD",)),
    extra_aliases={"ONHOLD": 1},
)
AVAILABLE, ON_HOLD, MEMO, SOLD = range(4)

FANCY_COLORS = ("YELLOW", "PINK", "BLUE", "GREEN", "BROWN", "ORANGE", "PURPLE", "GRAY")
FANCY_INTENSITIES = (
    "FAINT", "VERY LIGHT", "LIGHT", "FANCY LIGHT", "FANCY", "FANCY INTENSE", "FANCY VIVID", "FANCY DEEP",
)
FANCY_OVERTONES = (None, "GREENISH", "BROWNISH", "PINKISH", "ORANGEY", "YELLOWISH", "PURPLISH")
GIRDLES = ("MEDIUM", "THIN TO MEDIUM", "Medium to Slightly Thick", "THIN", "SLIGHTLY THICK", "Medium-Thick")
CULETS = ("NONE", "None", "POINTED", "VERY SMALL", "Small")
MINES = ("Botswana", "Canada", "Russia", "South Africa", "Namibia", "Australia", "Sierra Leone", "Angola")


def codes_of(vocabulary: Vocabulary, tokens: Sequence[str]) -> tuple[tuple[int, ...], list[str]]:
    """Codes of the tokens (sorted, de-duplicated) and the tokens that named nothing."""
    codes: set[int] = set()
    unknown: list[str] = []
    for token in tokens:
        code = vocabulary.code(token)
        if code is None:
            unknown.append(token)
        else:
            codes.add(code)
    return tuple(sorted(codes)), unknown
