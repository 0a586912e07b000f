"""What a sellable stone looks like: the plausibility and length bounds of the settings, as one value.

Consolidation rejects a stone beyond them (shared/sync/sql/map.sql takes them as parameters), and the
fetch ranks an implausible offer last among duplicates of one stone id (shared/sync/fetch.py), so a
stone served again under its id at $0 never displaces the real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.config import Settings


@dataclass(frozen=True)
class MappingBounds:
    """Plausibility and length bounds the mapping rejects beyond (shared/config.py documents them)."""

    plausible_carats_min: Decimal
    plausible_carats_max: Decimal
    plausible_price_per_carat_min_cents: int
    plausible_price_per_carat_max_cents: int
    mapped_text_max_chars: int
    mapped_url_max_chars: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> MappingBounds:
        """The configured bounds; the settings' defaults without settings."""
        names = cls.__dataclass_fields__
        if settings is None:
            return cls(**{name: Settings.model_fields[name].default for name in names})
        return cls(**{name: getattr(settings, name) for name in names})

    def plausible(self, price_cents: int | None, carats: Decimal | None) -> bool:
        """Whether a supplier price and weight are within the bounds (map.sql's rule, before rounding)."""
        if price_cents is None or carats is None or not carats.is_finite():
            return False
        if not self.plausible_carats_min <= carats <= self.plausible_carats_max:
            return False
        per_carat = Decimal(price_cents) / carats
        return self.plausible_price_per_carat_min_cents <= per_carat <= self.plausible_price_per_carat_max_cents
