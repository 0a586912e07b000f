"""Raw Nivoda payloads -> canonical catalogue rows (grades normalised, money in cents, sizes in Decimal).

A payload the catalogue cannot hold (unknown shape, no carats, no price) raises UnmappableStone with
the reason; the consolidator records it and goes on with the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from shared.catalogue import grades

TWO_PLACES = Decimal("0.01")
THREE_PLACES = Decimal("0.001")


class UnmappableStone(ValueError):
    """The payload lacks something every catalogue row needs."""


@dataclass(frozen=True, slots=True)
class Stone:
    """A stone as the catalogue stores it, before pricing. Field names are the `diamonds` columns."""

    feed: str
    stone_id: str
    offer_id: str
    supplier_stock_id: str | None
    supplier_id: str | None
    supplier_name: str | None
    shape: str
    carats: Decimal
    color: str | None
    clarity: str | None
    cut: str | None
    polish: str | None
    symmetry: str | None
    fluorescence: str | None
    fluorescence_color: str | None
    fancy_color: str | None
    fancy_intensity: str | None
    fancy_overtone: str | None
    lab_grown: bool
    lab_grown_type: str | None
    treated: bool
    eye_clean: str | None
    brown: str | None
    green: str | None
    milky: str | None
    mine_of_origin: str | None
    length_mm: Decimal | None
    width_mm: Decimal | None
    depth_mm: Decimal | None
    depth_percent: Decimal | None
    table_percent: Decimal | None
    ratio: Decimal | None
    girdle: str | None
    culet: str | None
    crown_angle: Decimal | None
    crown_height: Decimal | None
    pavilion_angle: Decimal | None
    pavilion_depth: Decimal | None
    lab: str | None
    certificate_number: str | None
    certificate_url: str | None
    image_url: str | None
    video_url: str | None
    v360_url: str | None
    availability: str
    delivery_min_days: int | None
    delivery_max_days: int | None
    return_window_days: int | None
    cost_cents: int

    @property
    def stone_type(self) -> str:
        """What pricing rules match on: lab-grown, else fancy colour, else natural."""
        if self.lab_grown:
            return "lab_grown"
        return "fancy" if self.fancy_color else "natural"


STONE_COLUMNS = tuple(f.name for f in fields(Stone))


def map_payload(feed: str, payload: dict[str, Any], *, lab_grown_default: bool) -> Stone:
    """Map one raw item; raise UnmappableStone with a reason when it cannot be catalogued."""
    diamond = _object(payload, "diamond")
    certificate = _object(diamond, "certificate")
    shape = grades.SHAPES.normalise(certificate.get("shape"))
    if shape is None:
        raise UnmappableStone(f"unknown shape {certificate.get('shape')!r}")
    carats = _decimal(certificate.get("carats"), TWO_PLACES)
    if carats is None or carats <= 0:
        raise UnmappableStone(f"carats must be a positive number, got {certificate.get('carats')!r}")
    cost = payload.get("price")
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise UnmappableStone(f"price must be whole non-negative cents, got {cost!r}")
    availability = grades.AVAILABILITY.normalise(diamond.get("availability") or "AVAILABLE")
    if availability is None:
        raise UnmappableStone(f"unknown availability {diamond.get('availability')!r}")
    fancy_color = _text(certificate.get("f_color"))
    length, width = _decimal(certificate.get("length"), TWO_PLACES), _decimal(certificate.get("width"), TWO_PLACES)
    supplier = diamond.get("supplier") if isinstance(diamond.get("supplier"), dict) else {}
    delivery = diamond.get("delivery_time") if isinstance(diamond.get("delivery_time"), dict) else {}
    v360 = diamond.get("v360") if isinstance(diamond.get("v360"), dict) else {}
    labgrown = certificate.get("labgrown")
    return Stone(
        feed=feed,
        stone_id=str(diamond["id"]),
        offer_id=str(payload["id"]),
        supplier_stock_id=_text(diamond.get("supplierStockId")),
        supplier_id=_text(supplier.get("id")),
        supplier_name=_text(supplier.get("name")),
        shape=shape,
        carats=carats,
        color=None if fancy_color else grades.COLORS.normalise(certificate.get("color")),
        clarity=grades.CLARITIES.normalise(certificate.get("clarity")),
        cut=grades.FINISH.normalise(certificate.get("cut")),
        polish=grades.FINISH.normalise(certificate.get("polish")),
        symmetry=grades.FINISH.normalise(certificate.get("symmetry")),
        fluorescence=grades.FLUORESCENCE.normalise(certificate.get("floInt")),
        fluorescence_color=_upper(certificate.get("floCol")),
        fancy_color=_upper(fancy_color),
        fancy_intensity=_upper(certificate.get("f_intensity")),
        fancy_overtone=_upper(certificate.get("f_overtone")),
        lab_grown=labgrown if isinstance(labgrown, bool) else lab_grown_default,
        lab_grown_type=_upper(certificate.get("labgrown_type")),
        treated=certificate.get("treated") is True,
        eye_clean=_text(diamond.get("eyeClean")),
        brown=_text(diamond.get("brown")),
        green=_text(diamond.get("green")),
        milky=_text(diamond.get("milky")),
        mine_of_origin=_text(diamond.get("mine_of_origin")),
        length_mm=length,
        width_mm=width,
        depth_mm=_decimal(certificate.get("depth"), TWO_PLACES),
        depth_percent=_decimal(certificate.get("depthPercentage"), TWO_PLACES),
        table_percent=_decimal(certificate.get("table"), TWO_PLACES),
        ratio=_decimal(length / width, THREE_PLACES) if length and width else None,
        girdle=_upper(certificate.get("girdle")),
        culet=_upper(certificate.get("culetSize")),
        crown_angle=_decimal(certificate.get("crownAngle"), TWO_PLACES),
        crown_height=_decimal(certificate.get("crownHeight"), TWO_PLACES),
        pavilion_angle=_decimal(certificate.get("pavAngle"), TWO_PLACES),
        pavilion_depth=_decimal(certificate.get("pavDepth"), TWO_PLACES),
        lab=grades.LABS.normalise(certificate.get("lab")),
        certificate_number=_text(certificate.get("certNumber")),
        certificate_url=_text(certificate.get("pdfUrl")),
        image_url=_text(diamond.get("image")),
        video_url=_text(diamond.get("video")),
        v360_url=_text(v360.get("url")),
        availability=availability,
        delivery_min_days=_whole(delivery.get("min_business_days")),
        delivery_max_days=_max_days(delivery),
        return_window_days=_whole(diamond.get("return_window")),
        cost_cents=cost,
    )


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise UnmappableStone(f"{key} missing")
    return value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _upper(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text else None


def _decimal(value: Any, places: Decimal, below: Decimal = Decimal(1000)) -> Decimal | None:
    """A JSON number as an exact Decimal (via its shortest text form), rounded; None when absent or junk.

    `below` keeps junk out of the numeric columns (a 5-digit table % would fail the whole batch).
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or number < 0 or number >= below:
        return None
    return number.quantize(places, ROUND_HALF_UP)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _max_days(delivery: dict[str, Any]) -> int | None:
    low, high = _whole(delivery.get("min_business_days")), _whole(delivery.get("max_business_days"))
    # The catalogue requires max >= min; a supplier that swaps them still means the same window.
    return None if high is None else max(high, low or 0)
