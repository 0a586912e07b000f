"""Admin endpoints under `/_emulator/` (no auth; the app answers them on loopback only).

GET  /_emulator/health            liveness and inventory size
GET  /_emulator/stats             requests by kind and outcome, pages, items and counts served
GET  /_emulator/faults            current fault and quirk settings
PUT  /_emulator/faults            replace them (omitted fields take their defaults); 422 on bad input
PATCH /_emulator/faults           change only the given fields; 422 on bad input
POST /_emulator/tick              {"sold", "repriced", "added", "held"} -> the tick summary
POST /_emulator/tokens/expire     forget every issued token (clients must log in again)
GET  /_emulator/malformed         the stones currently served malformed
GET  /_emulator/hostile           the stones currently served hostile (NUL, NaN, stolen ids, ...)
GET  /_emulator/truth?labgrown=   how many stones the feed really holds
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emulator import hostile, identity, malformed
from emulator.config import FaultSettings
from emulator.service import hostile_kinds, served_clean
from emulator.state import EmulatorState

Reply = tuple[int, Any]


class TickBody(BaseModel):
    """Counts (JSON integers) or fractions of the live stones (JSON numbers with a fraction part)."""

    model_config = ConfigDict(extra="forbid")

    sold: int | float = Field(default=0, ge=0)
    repriced: int | float = Field(default=0, ge=0)
    added: int | float = Field(default=0, ge=0)
    held: int | float = Field(default=0, ge=0)
    now: datetime | None = None


def _invalid(exc: ValidationError) -> Reply:
    return 422, {"detail": json.loads(exc.json(include_url=False))}


def _health(state: EmulatorState, _query: dict[str, list[str]], _body: Any) -> Reply:
    inventory = state.inventory
    return 200, {
        "status": "ok",
        "seed": inventory.seed,
        "stones": len(inventory),
        "live": inventory.truth(),
        "ticks": inventory.ticks,
    }


def _stats(state: EmulatorState, _query: dict[str, list[str]], _body: Any) -> Reply:
    return 200, state.stats.snapshot()


def _get_faults(state: EmulatorState, _query: dict[str, list[str]], _body: Any) -> Reply:
    return 200, state.faults.settings.model_dump()


def _put_faults(state: EmulatorState, _query: dict[str, list[str]], body: Any) -> Reply:
    try:
        settings = FaultSettings.model_validate(body)
    except ValidationError as exc:
        return _invalid(exc)
    state.faults.replace(settings)
    return 200, settings.model_dump()


def _patch_faults(state: EmulatorState, query: dict[str, list[str]], body: Any) -> Reply:
    if not isinstance(body, dict):
        return 422, {"detail": "expected a JSON object"}
    return _put_faults(state, query, state.faults.settings.model_dump() | body)


def _tick(state: EmulatorState, _query: dict[str, list[str]], body: Any) -> Reply:
    try:
        request = TickBody.model_validate(body or {})
        summary = state.inventory.tick(**request.model_dump())
    except ValidationError as exc:
        return _invalid(exc)
    except ValueError as exc:  # more stones asked for than the inventory holds
        return 422, {"detail": str(exc)}
    return 200, summary.to_dict()


def _expire_tokens(state: EmulatorState, _query: dict[str, list[str]], _body: Any) -> Reply:
    return 200, {"expired": state.tokens.expire_all()}


def _malformed(state: EmulatorState, _query: dict[str, list[str]], _body: Any) -> Reply:
    inventory = state.inventory
    rate = state.faults.settings.malformed_item_rate
    live = inventory.live()
    stone_kinds = malformed.kinds(inventory.hasher, live, rate)
    broken = stone_kinds != malformed.CLEAN
    indices, kinds = live[broken], stone_kinds[broken]
    offers = identity.offer_ids(inventory.hasher, indices)
    stones = [
        {"index": i, "id": stone_id, "offer_id": offer, "kind": malformed.Malformation(k).name.lower()}
        for i, stone_id, offer, k in zip(
            indices.tolist(), inventory.stone_ids(indices), offers, kinds.tolist(), strict=True
        )
    ]
    return 200, {"rate": rate, "count": len(stones), "stones": stones}


def _hostile(state: EmulatorState, _query: dict[str, list[str]], _body: Any) -> Reply:
    """The stones served hostile, their kind, and for stolen ids across pages the id they are served under."""
    inventory, settings = state.inventory, state.faults.settings
    live = inventory.live()
    stone_kinds = hostile_kinds(inventory, live, settings)
    broken = stone_kinds != hostile.CLEAN
    indices, kinds = live[broken], stone_kinds[broken]
    across = kinds == hostile.KINDS.index(hostile.DUPLICATE_ACROSS)
    twins = hostile.across_twins(inventory, indices[across], lambda s: served_clean(inventory, s, settings))
    served_as = dict(zip(indices[across].tolist(), twins, strict=True))
    offers = identity.offer_ids(inventory.hasher, indices)
    stones = [
        {
            "index": i,
            "id": stone_id,
            "offer_id": offer,
            "kind": hostile.KINDS[k],
            "served_id": None if served_as.get(i) is None else inventory.stone_ids([served_as[i]])[0],
        }
        for i, stone_id, offer, k in zip(
            indices.tolist(), inventory.stone_ids(indices), offers, kinds.tolist(), strict=True
        )
    ]
    return 200, {
        "rate": settings.hostile_item_rate,
        "kinds": list(hostile.KINDS),
        "count": len(stones),
        "stones": stones,
    }


def _truth(state: EmulatorState, query: dict[str, list[str]], _body: Any) -> Reply:
    raw = query.get("labgrown", [""])[-1].lower()
    choices = {"": None, "true": True, "1": True, "false": False, "0": False}
    if raw not in choices:
        return 422, {"detail": f"labgrown must be true or false, got {raw!r}"}
    labgrown = choices[raw]
    return 200, {"labgrown": labgrown, "count": state.inventory.truth(labgrown)}


ROUTES: dict[str, dict[str, Callable[[EmulatorState, dict[str, list[str]], Any], Reply]]] = {
    "/_emulator/health": {"GET": _health},
    "/_emulator/stats": {"GET": _stats},
    "/_emulator/faults": {"GET": _get_faults, "PUT": _put_faults, "PATCH": _patch_faults},
    "/_emulator/tick": {"POST": _tick},
    "/_emulator/tokens/expire": {"POST": _expire_tokens},
    "/_emulator/malformed": {"GET": _malformed},
    "/_emulator/hostile": {"GET": _hostile},
    "/_emulator/truth": {"GET": _truth},
}


def handle(state: EmulatorState, method: str, path: str, query_string: bytes, body: bytes) -> Reply:
    methods = ROUTES.get(path.rstrip("/"))
    if methods is None:
        return 404, {"detail": f"no admin endpoint {path}", "endpoints": sorted(ROUTES)}
    handler = methods.get(method)
    if handler is None:
        return 405, {"detail": f"{method} not allowed; use {', '.join(methods)}"}
    try:
        payload = json.loads(body) if body.strip() else None
    except json.JSONDecodeError as exc:
        return 400, {"detail": f"body is not JSON: {exc}"}
    return handler(state, parse_qs(query_string.decode("latin-1")), payload)
