"""How each item field is served: one vectorised resolver per (type, field) of the item types.

A leaf resolver returns the column of values for the page; an object resolver returns where the
object is present (None: everywhere). `tests/emulator` checks that every schema field has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from graphql import GraphQLObjectType, GraphQLSchema, get_named_type

from emulator import identity, vocab
from emulator.hashing import Salt
from emulator.inventory import discount_bp
from emulator.page import CERTIFICATES, MEDIA, PageContext

Leaf = Callable[[PageContext], list[Any]]
Presence = Callable[[PageContext], "np.ndarray | None"]
LEAVES: dict[tuple[str, str], Leaf] = {}
OBJECTS: dict[tuple[str, str], Presence] = {}


ITEM_TYPES = ("Item", "Diamond", "V360", "DeliveryTime", "Supplier", "Certificate")


def missing_resolvers(schema: GraphQLSchema) -> list[str]:
    """Item fields the schema declares but nothing serves (checked at start-up)."""
    missing = []
    for type_name in ITEM_TYPES:
        object_type = schema.type_map[type_name]
        assert isinstance(object_type, GraphQLObjectType)
        for name, field in object_type.fields.items():
            known = OBJECTS if isinstance(get_named_type(field.type), GraphQLObjectType) else LEAVES
            if (type_name, name) not in known:
                missing.append(f"{type_name}.{name}")
    return missing


def leaf(type_name: str, name: str) -> Callable[[Leaf], Leaf]:
    def register(resolver: Leaf) -> Leaf:
        LEAVES[(type_name, name)] = resolver
        return resolver

    return register


def _everywhere(_ctx: PageContext) -> None:
    return None


def _when(mask: np.ndarray, values: list[Any]) -> list[Any]:
    return [v if m else None for v, m in zip(values, mask.tolist(), strict=True)]


# -- Item: the offer ----------------------------------------------------------------------------
OBJECTS[("Item", "diamond")] = _everywhere
leaf("Item", "id")(lambda ctx: identity.offer_ids(ctx.hasher, ctx.indices))
leaf("Item", "price")(lambda ctx: ctx.cols.price_cents.tolist())
leaf("Item", "diamond_price")(lambda ctx: ctx.cols.price_cents.tolist())
leaf("Item", "markup_price")(lambda ctx: ctx.markup_cents().tolist())
leaf("Item", "discount")(lambda ctx: (discount_bp(ctx.cols.price_cents, ctx.cols.list_cents) / 100).tolist())
leaf("Item", "markup_discount")(lambda ctx: (discount_bp(ctx.markup_cents(), ctx.cols.list_cents) / 100).tolist())

# -- Diamond: the stone -------------------------------------------------------------------------
OBJECTS[("Diamond", "v360")] = lambda ctx: ctx.cols.has_v360
OBJECTS[("Diamond", "delivery_time")] = _everywhere
OBJECTS[("Diamond", "supplier")] = _everywhere
OBJECTS[("Diamond", "certificate")] = _everywhere  # only malformations remove it
leaf("Diamond", "id")(lambda ctx: list(ctx.stone_ids()))
leaf("Diamond", "availability")(lambda ctx: vocab.AVAILABILITY.spell(ctx.cols.availability, ctx.spelling(0)))
leaf("Diamond", "NivodaStockId")(lambda ctx: [f"NV{100_000_000 + i}" for i in ctx.indices.tolist()])
leaf("Diamond", "image")(lambda ctx: _when(ctx.cols.has_image, [f"{MEDIA}/images/{s}.jpg" for s in ctx.stone_ids()]))
leaf("Diamond", "video")(lambda ctx: _when(ctx.cols.has_v360, [f"{MEDIA}/v360/{s}/video" for s in ctx.stone_ids()]))
leaf("V360", "url")(lambda ctx: [f"{MEDIA}/v360/{s}/index.html" for s in ctx.stone_ids()])
leaf("Diamond", "return_window")(lambda ctx: ctx.pick(Salt.DELIVERY, (0, 14, 14, 30), shift=24))


@leaf("Diamond", "HoldId")
def _hold_id(ctx: PageContext) -> list[str | None]:
    words = ctx.words(Salt.HOLD).tolist()
    return _when(ctx.cols.availability == vocab.ON_HOLD, [f"HLD-{w & 0xFFFFFFFFFF:010X}" for w in words])


@leaf("Diamond", "supplierStockId")
def _supplier_stock_id(ctx: PageContext) -> list[str]:
    numbers = (ctx.words(Salt.STOCK) % np.uint64(10_000_000)).tolist()
    return [f"{s.stock_prefix}-{n:07d}" for s, n in zip(ctx.suppliers(), numbers, strict=True)]


@leaf("Diamond", "eyeClean")
def _eye_clean(ctx: PageContext) -> list[bool]:
    # Up to VS2 is eye-clean; SI stones mostly; included stones rarely.
    chance = np.where(ctx.cols.clarity <= 5, 1.0, np.where(ctx.cols.clarity <= 7, 0.7, 0.1))
    eye_clean: list[bool] = (ctx.units(Salt.EYE_CLEAN) < chance).tolist()
    return eye_clean


def _tinge(shift: int) -> Leaf:
    # Mostly 0 (none); about 15 % of stones carry a faint (1) to strong (3) tinge of each kind.
    def resolve(ctx: PageContext) -> list[int]:
        percentile = (ctx.words(Salt.TINGE) >> np.uint64(shift)) % np.uint64(100)
        tinge: list[int] = np.searchsorted(np.array([85, 95, 99], dtype=np.uint64), percentile, side="right").tolist()
        return tinge

    return resolve


for _slot, _name in enumerate(("brown", "green", "blue", "gray", "milky")):
    leaf("Diamond", _name)(_tinge(8 + 6 * _slot))


@leaf("Diamond", "mine_of_origin")
def _mine(ctx: PageContext) -> list[str | None]:
    known = ~ctx.cols.labgrown & (ctx.units(Salt.ORIGIN) < 0.3)
    return _when(known, ctx.pick(Salt.ORIGIN, vocab.MINES, shift=8))


@leaf("DeliveryTime", "min_business_days")
def _min_days(ctx: PageContext) -> list[int]:
    days: list[int] = ((ctx.words(Salt.DELIVERY) % np.uint64(5)) + np.uint64(1)).astype(np.int64).tolist()
    return days


@leaf("DeliveryTime", "max_business_days")
def _max_days(ctx: PageContext) -> list[int]:
    extra = ((ctx.words(Salt.DELIVERY) >> np.uint64(8)) % np.uint64(6)) + np.uint64(2)
    return [a + b for a, b in zip(_min_days(ctx), extra.astype(np.int64).tolist(), strict=True)]


leaf("DeliveryTime", "express_timeline_applicable")(
    lambda ctx: (((ctx.words(Salt.DELIVERY) >> np.uint64(16)) % np.uint64(4)) == 0).tolist()
)
leaf("Supplier", "id")(lambda ctx: [s.id for s in ctx.suppliers()])
leaf("Supplier", "name")(lambda ctx: [s.name for s in ctx.suppliers()])
leaf("Supplier", "legal_name")(lambda ctx: [s.legal_name for s in ctx.suppliers()])

# -- Certificate --------------------------------------------------------------------------------
leaf("Certificate", "id")(lambda ctx: identity.certificate_ids(ctx.hasher, ctx.indices))
leaf("Certificate", "lab")(lambda ctx: vocab.LABS.spell(ctx.cols.lab, ctx.spelling(1)))
leaf("Certificate", "certNumber")(lambda ctx: list(ctx.cert_numbers()))
leaf("Certificate", "shape")(lambda ctx: vocab.SHAPES.spell(ctx.cols.shape, ctx.spelling(2)))
leaf("Certificate", "carats")(lambda ctx: (ctx.cols.carats_h / 100).tolist())
leaf("Certificate", "clarity")(lambda ctx: vocab.CLARITIES.spell(ctx.cols.clarity, ctx.spelling(3)))
leaf("Certificate", "cut")(lambda ctx: vocab.GRADES.spell(ctx.cols.cut, ctx.spelling(4)))
leaf("Certificate", "polish")(lambda ctx: vocab.GRADES.spell(ctx.cols.polish, ctx.spelling(5)))
leaf("Certificate", "symmetry")(lambda ctx: vocab.GRADES.spell(ctx.cols.symmetry, ctx.spelling(6)))
leaf("Certificate", "floInt")(lambda ctx: vocab.FLUORESCENCE.spell(ctx.cols.fluorescence, ctx.spelling(7)))
leaf("Certificate", "labgrown")(lambda ctx: ctx.cols.labgrown.tolist())
leaf("Certificate", "girdle")(lambda ctx: ctx.pick(Salt.GIRDLE, vocab.GIRDLES))
leaf("Certificate", "culetSize")(lambda ctx: ctx.pick(Salt.GIRDLE, vocab.CULETS, shift=16))


@leaf("Certificate", "pdfUrl")
def _pdf_url(ctx: PageContext) -> list[str]:
    labs = vocab.LABS.canonical
    pairs = zip(ctx.cols.lab.tolist(), ctx.cert_numbers(), strict=True)
    return [f"{CERTIFICATES}/{labs[lab]}/{number}.pdf" for lab, number in pairs]


@leaf("Certificate", "color")
def _color(ctx: PageContext) -> list[str | None]:
    # Fancy colours leave `color` empty: some suppliers send "", others null.
    empty = ["" if w % 2 else None for w in ctx.spelling(8).tolist()]
    spelled = vocab.COLORS.spell(ctx.cols.color, ctx.spelling(8))
    return [s if s is not None else e for s, e in zip(spelled, empty, strict=True)]


@leaf("Certificate", "floCol")
def _flo_col(ctx: PageContext) -> list[str | None]:
    return _when(ctx.cols.fluorescence > 0, ctx.pick(Salt.FANCY, ("BLUE", "Blue", "BLUE", "YELLOW"), shift=40))


@leaf("Certificate", "labgrown_type")
def _labgrown_type(ctx: PageContext) -> list[str | None]:
    return _when(ctx.cols.labgrown, ctx.pick(Salt.LABGROWN, ("CVD", "CVD", "CVD", "HPHT")))


@leaf("Certificate", "treated")
def _treated(ctx: PageContext) -> list[bool]:
    treated: list[bool] = (ctx.units(Salt.LABGROWN) < np.where(ctx.cols.labgrown, 0.15, 0.005)).tolist()
    return treated


def _fancy(options: tuple[Any, ...], shift: int) -> Leaf:
    return lambda ctx: _when(ctx.cols.color == vocab.NO_GRADE, ctx.pick(Salt.FANCY, options, shift=shift))


leaf("Certificate", "f_color")(_fancy(vocab.FANCY_COLORS, 0))
leaf("Certificate", "f_intensity")(_fancy(vocab.FANCY_INTENSITIES, 8))
leaf("Certificate", "f_overtone")(_fancy(vocab.FANCY_OVERTONES, 16))


def _measure(name: str, round_only: bool) -> Leaf:
    # Angles and heights are only graded on round brilliants; fancy shapes leave them null.
    def resolve(ctx: PageContext) -> list[Any]:
        values = ctx.measurements()[name].tolist()
        return _when(ctx.is_round(), values) if round_only else values

    return resolve


for _name in ("length", "width", "depth", "depthPercentage", "table"):
    leaf("Certificate", _name)(_measure(_name, round_only=False))
for _name in ("crownAngle", "crownHeight", "pavAngle", "pavDepth"):
    leaf("Certificate", _name)(_measure(_name, round_only=True))
