"""Which catalogue columns callers see. Cost, supplier identity and pricing internals never leave the
database through the API: they would let a partner bypass us (OWASP API3, property-level access).

Supplier identity includes the feed (its name is the supplier's) and the supplier's own stone id:
`diamond_id` is the stone's only id outside the database, and `lab_grown` answers what a partner
needs of the feed. docs/security.md lists what a partner sees.

Supplier identity also includes its media URLs, which name its host: they never leave the database
either. `image_url` and `video_url` are selected as "has one" booleans and become caratflow media
links (shared/catalogue/media.py); the 360 viewer is only `has_v360`; the certificate is `lab` and
`certificate_number` (docs/media.md says why)."""

from __future__ import annotations

SLIM = (
    "diamond_id",
    "shape",
    "carats",
    "color",
    "clarity",
    "cut",
    "polish",
    "symmetry",
    "fluorescence",
    "fancy_color",
    "lab_grown",
    "lab",
    "certificate_number",
    "price_cents",
    "price_per_carat_cents",
    "availability",
    "image_url",
    "listed_at",
    "delisted_at",
)
FULL = (
    *SLIM,
    "fluorescence_color",
    "fancy_intensity",
    "fancy_overtone",
    "lab_grown_type",
    "treated",
    "eye_clean",
    "brown",
    "green",
    "milky",
    "mine_of_origin",
    "length_mm",
    "width_mm",
    "depth_mm",
    "depth_percent",
    "table_percent",
    "ratio",
    "girdle",
    "culet",
    "crown_angle",
    "crown_height",
    "pavilion_angle",
    "pavilion_depth",
    "video_url",
    "has_v360",
    "delivery_min_days",
    "delivery_max_days",
    "return_window_days",
    "pricing_version",
    "first_listed_at",
    "updated_at",
)
PRICE_HISTORY = ("changed_at", "old_price_cents", "new_price_cents", "pricing_version")
