"""The canonical grades the catalogue stores (migration 0005's grade_aliases; a test keeps them equal)."""

from __future__ import annotations

from typing import Literal

Shape = Literal["ROUND", "OVAL", "CUSHION", "PRINCESS", "EMERALD", "PEAR", "RADIANT", "MARQUISE", "ASSCHER", "HEART"]
Color = Literal[
    "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z"
]
Clarity = Literal["FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "SI3", "I1", "I2", "I3"]
# Cut, polish and symmetry share one scale.
Finish = Literal["EXCELLENT", "VERY GOOD", "GOOD", "FAIR", "POOR"]
Fluorescence = Literal["NONE", "FAINT", "MEDIUM", "STRONG", "VERY STRONG"]
Lab = Literal["GIA", "IGI", "HRD", "GCAL", "AGS", "EGL", "GSI", "NONE"]
Availability = Literal["available", "on_hold", "memo", "sold"]
