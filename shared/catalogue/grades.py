"""Canonical grade vocabularies and the spellings suppliers use for them.

Suppliers mix abbreviations and cases (`EX`, `Excellent`, `EXCELLENT`; `VG`, `V.GOOD`). Each concept
has one canonical spelling here, which is what the catalogue stores and the API filters on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s_.\-]+")


def _key(text: str) -> str:
    return _SEPARATORS.sub(" ", text.strip()).upper()


@dataclass(frozen=True)
class Vocabulary:
    name: str
    canonical: tuple[str, ...]
    aliases: dict[str, str]  # spelling (any case/separators) -> canonical

    def __post_init__(self) -> None:
        table = {_key(c): c for c in self.canonical}
        for alias, target in self.aliases.items():
            if target not in self.canonical:
                raise ValueError(f"{self.name}: alias {alias!r} points at unknown {target!r}")
            table[_key(alias)] = target
        object.__setattr__(self, "_table", table)

    def normalise(self, value: object) -> str | None:
        """The canonical spelling, or None when `value` names nothing in this vocabulary."""
        if not isinstance(value, str) or not value.strip():
            return None
        return self._table.get(_key(value))  # type: ignore[attr-defined]


SHAPES = Vocabulary(
    "shape",
    ("ROUND", "OVAL", "CUSHION", "PRINCESS", "EMERALD", "PEAR", "RADIANT", "MARQUISE", "ASSCHER", "HEART"),
    {
        "RD": "ROUND",
        "BR": "ROUND",
        "ROUND BRILLIANT": "ROUND",
        "OV": "OVAL",
        "CU": "CUSHION",
        "CUSHION MODIFIED": "CUSHION",
        "CUSHION BRILLIANT": "CUSHION",
        "CMB": "CUSHION",
        "PR": "PRINCESS",
        "EM": "EMERALD",
        "PS": "PEAR",
        "PE": "PEAR",
        "RAD": "RADIANT",
        "RA": "RADIANT",
        "MQ": "MARQUISE",
        "AS": "ASSCHER",
        "SQ EMERALD": "ASSCHER",
        "HS": "HEART",
        "HT": "HEART",
    },
)
COLORS = Vocabulary("color", tuple("DEFGHIJKLMNOPQRSTUVWXYZ"), {})
CLARITIES = Vocabulary(
    "clarity",
    ("FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "SI3", "I1", "I2", "I3"),
    {"FLAWLESS": "FL", "INTERNALLY FLAWLESS": "IF"},
)
# Cut, polish and symmetry share one scale.
FINISH = Vocabulary(
    "finish",
    ("EXCELLENT", "VERY GOOD", "GOOD", "FAIR", "POOR"),
    {
        "EX": "EXCELLENT",
        "EXC": "EXCELLENT",
        "IDEAL": "EXCELLENT",
        "ID": "EXCELLENT",
        "VG": "VERY GOOD",
        "V GOOD": "VERY GOOD",
        "VGOOD": "VERY GOOD",
        "G": "GOOD",
        "GD": "GOOD",
        "F": "FAIR",
        "FR": "FAIR",
        "P": "POOR",
        "PR": "POOR",
    },
)
FLUORESCENCE = Vocabulary(
    "fluorescence",
    ("NONE", "FAINT", "MEDIUM", "STRONG", "VERY STRONG"),
    {
        "NON": "NONE",
        "N": "NONE",
        "NEGLIGIBLE": "NONE",
        "FNT": "FAINT",
        "F": "FAINT",
        "SLIGHT": "FAINT",
        "MED": "MEDIUM",
        "M": "MEDIUM",
        "STG": "STRONG",
        "ST": "STRONG",
        "S": "STRONG",
        "VST": "VERY STRONG",
        "VSTG": "VERY STRONG",
        "VS": "VERY STRONG",
    },
)
LABS = Vocabulary("lab", ("GIA", "IGI", "HRD", "GCAL", "AGS", "EGL", "GSI", "NONE"), {"NON CERT": "NONE"})
AVAILABILITY = Vocabulary(
    "availability",
    ("available", "on_hold", "memo", "sold"),
    {
        "AVAILABLE": "available",
        "ON HOLD": "on_hold",
        "HOLD": "on_hold",
        "ONHOLD": "on_hold",
        "MEMO": "memo",
        "SOLD": "sold",
    },
)
