"""`DiamondSearch`: every filter, sort and page parameter of a catalogue search, validated.

The field names are the catalogue's column names (`carats`, `price_cents`, `table_percent`), with
`_min`/`_max` for ranges: one name per concept from SQL to the API's query string.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.catalogue.vocabulary import Availability, Clarity, Color, Finish, Fluorescence, Lab, Shape
from shared.text import check_text

# Sort keys: the column, and how a cursor carries its value.
SORT_COLUMNS: dict[str, type] = {
    "price_cents": int,
    "price_per_carat_cents": int,
    "carats": Decimal,
    "color": int,  # sorts by color_rank: D first, fancy colours last
    "clarity": int,  # sorts by clarity_rank: FL first
    "listed_at": str,
}
if TYPE_CHECKING:
    # Built below from SORT_COLUMNS when the module loads, which a type checker cannot evaluate.
    SortKey = str
else:
    SortKey = Literal[tuple(key for column in SORT_COLUMNS for key in (column, f"-{column}"))]

_MAX_VALUES = 30
FancyColor = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=40),
    AfterValidator(check_text),
]
Cents = Annotated[int, Field(ge=0, le=10**12)]
Carats = Annotated[Decimal, Field(ge=0, le=1000, max_digits=7, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
Ratio = Annotated[Decimal, Field(ge=0, le=100, max_digits=6, decimal_places=3)]

# Range filters: (parameter stem, column).
RANGES = ("carats", "price_cents", "price_per_carat_cents", "ratio", "table_percent", "depth_percent")
# Set filters: parameter and column share the name.
SETS = (
    "shape",
    "color",
    "clarity",
    "cut",
    "polish",
    "symmetry",
    "fluorescence",
    "lab",
    "fancy_color",
    "availability",
)


class DiamondSearch(BaseModel):
    """A catalogue search. Lists match any of their values; ranges are inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: list[Shape] = Field(default_factory=list, max_length=_MAX_VALUES)
    carats_min: Carats | None = None
    carats_max: Carats | None = None
    color: list[Color] = Field(default_factory=list, max_length=_MAX_VALUES)
    clarity: list[Clarity] = Field(default_factory=list, max_length=_MAX_VALUES)
    cut: list[Finish] = Field(default_factory=list, max_length=_MAX_VALUES)
    polish: list[Finish] = Field(default_factory=list, max_length=_MAX_VALUES)
    symmetry: list[Finish] = Field(default_factory=list, max_length=_MAX_VALUES)
    fluorescence: list[Fluorescence] = Field(default_factory=list, max_length=_MAX_VALUES)
    lab: list[Lab] = Field(default_factory=list, max_length=_MAX_VALUES, description="certificate lab")
    lab_grown: bool | None = None
    fancy: bool | None = Field(default=None, description="true: fancy colours only; false: white (D-Z) only")
    fancy_color: list[FancyColor] = Field(default_factory=list, max_length=_MAX_VALUES)
    price_cents_min: Cents | None = None
    price_cents_max: Cents | None = None
    price_per_carat_cents_min: Cents | None = None
    price_per_carat_cents_max: Cents | None = None
    ratio_min: Ratio | None = None
    ratio_max: Ratio | None = None
    table_percent_min: Percent | None = None
    table_percent_max: Percent | None = None
    depth_percent_min: Percent | None = None
    depth_percent_max: Percent | None = None
    availability: list[Availability] = Field(default_factory=list, max_length=_MAX_VALUES)
    include_delisted: bool = Field(default=False, description="also return stones no longer in the feed")
    sort: SortKey = Field(default="price_cents", description="column to sort by; '-' for descending")
    limit: int | None = Field(default=None, ge=1, le=1000, description="page size (the API caps it)")
    cursor: str | None = Field(default=None, min_length=1, max_length=512, description="next_cursor of a page")
    fields: Literal["slim", "full"] = "slim"

    @model_validator(mode="after")
    def _ranges_in_order(self) -> DiamondSearch:
        for stem in RANGES:
            low, high = getattr(self, f"{stem}_min"), getattr(self, f"{stem}_max")
            if low is not None and high is not None and low > high:
                raise ValueError(f"{stem}_min ({low}) is above {stem}_max ({high})")
        return self

    @property
    def sort_column(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    def filters(self) -> dict[str, Any]:
        """The parameters that choose WHICH stones match (not their order or page)."""
        chosen = self.model_dump(mode="json", exclude={"sort", "limit", "cursor", "fields"}, exclude_defaults=True)
        # Order and repeats inside a list do not change the match.
        return {name: sorted(set(value)) if isinstance(value, list) else value for name, value in chosen.items()}

    def fingerprint(self) -> str:
        """Identifies the filters and order a cursor was issued for; a cursor is refused elsewhere."""
        document = json.dumps({"filters": self.filters(), "sort": self.sort}, sort_keys=True)
        return hashlib.sha256(document.encode()).hexdigest()[:16]
