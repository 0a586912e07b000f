"""Response shapes, for the API document (routes serialise rows directly; schemathesis holds them to these).

Decimal values (carats, measurements, percentages) are JSON strings, so no client parses them as
binary floats; money is integer cents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field

DecimalText = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["1.01"])]
MediaLink = Annotated[
    str | None,
    Field(
        pattern=r"^(https?://[^/]+)?/api/media/[0-9]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
        description="caratflow media link (GET, unsigned), valid for about a day; null when the stone has none",
    ),
]


class DiamondSlim(BaseModel):
    diamond_id: UUID
    shape: str
    carats: DecimalText
    color: str | None
    clarity: str | None
    cut: str | None
    polish: str | None
    symmetry: str | None
    fluorescence: str | None
    fancy_color: str | None
    lab_grown: bool
    lab: str | None
    certificate_number: str | None
    price_cents: int
    price_per_carat_cents: int
    availability: str
    image_url: MediaLink
    listed_at: datetime
    delisted_at: datetime | None


class DiamondFull(DiamondSlim):
    fluorescence_color: str | None
    fancy_intensity: str | None
    fancy_overtone: str | None
    lab_grown_type: str | None
    treated: bool
    eye_clean: str | None
    brown: str | None
    green: str | None
    milky: str | None
    mine_of_origin: str | None
    length_mm: DecimalText | None
    width_mm: DecimalText | None
    depth_mm: DecimalText | None
    depth_percent: DecimalText | None
    table_percent: DecimalText | None
    ratio: DecimalText | None
    girdle: str | None
    culet: str | None
    crown_angle: DecimalText | None
    crown_height: DecimalText | None
    pavilion_angle: DecimalText | None
    pavilion_depth: DecimalText | None
    video_url: MediaLink
    has_v360: bool = Field(description="the supplier has a 360 viewer for the stone (not shared with partners)")
    delivery_min_days: int | None
    delivery_max_days: int | None
    return_window_days: int | None
    pricing_version: int
    first_listed_at: datetime
    updated_at: datetime


class PageInfo(BaseModel):
    limit: int
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
    count: int = Field(description="matching stones; exact unless count_is_estimate")
    count_is_estimate: bool


class SearchPage(BaseModel):
    data: list[DiamondFull | DiamondSlim]
    page: PageInfo
    dataset_version: int


class PricePoint(BaseModel):
    changed_at: datetime
    old_price_cents: int | None
    new_price_cents: int
    pricing_version: int


class PriceHistory(BaseModel):
    diamond_id: UUID
    data: list[PricePoint]
    dataset_version: int


class Checks(BaseModel):
    database: Literal["up", "down"]
    secret_store: Literal["up", "down"] = Field(description="Key Vault, or the local secrets file")


class Health(BaseModel):
    status: Literal["ok", "ready", "unready", "draining"] = Field(
        description="ok: the process answers (/api/health); ready, unready or draining (/api/ready)"
    )
    checks: Checks | None = Field(default=None, description="/api/ready: each dependency, up or down")
