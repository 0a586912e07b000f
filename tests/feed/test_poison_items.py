"""Poison items at the feed boundary: one reject each, with the path in the reason and a storable payload."""

from __future__ import annotations

import copy
import json
from typing import Any

import psycopg
import pytest

from shared.db.rows import one
from shared.feed.nivoda.items import validate_items

GOOD: dict[str, Any] = {
    "id": "offer-1",
    "price": 12345,
    "diamond": {"id": "stone-1", "certificate": {"shape": "ROUND", "carats": 1.01}},
}


def _with(path: tuple[str, ...], value: object) -> dict[str, Any]:
    item = copy.deepcopy(GOOD)
    node = item
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return item


POISON = [
    (("diamond", "certificate", "girdle"), "MEDIUM\x00", "diamond.certificate.girdle: character U+0000"),
    (("diamond", "notes"), [{"deep": ["ok", "a\ud800"]}], "diamond.notes[0].deep[1]: character U+D800"),
    (("diamond", "extra"), {"k\x00ey": 1}, 'diamond.extra: key "k\\u0000ey"'),
    (("discount",), float("nan"), "discount: nan"),
    (("diamond", "certificate", "table"), float("-inf"), "diamond.certificate.table: -inf"),
    (("diamond", "id"), "stone\x1b[2J", "diamond.id: character U+001B"),
    (("diamond", "id"), "   ", "id is blank"),
    (("id",), "\t", "id is blank"),
]


@pytest.mark.parametrize(("path", "value", "reason"), POISON)
def test_one_poison_item_is_one_reject_and_the_page_goes_on(path, value, reason, database_url) -> None:
    items, rejects = validate_items([GOOD, _with(path, value), _with(("id",), "offer-3")])
    assert [i.offer_id for i in items] == ["offer-1", "offer-3"]
    assert [r.item_index for r in rejects] == [1]
    assert reason in rejects[0].reason
    with psycopg.connect(database_url) as conn:
        stored = one(conn.execute("SELECT %s::jsonb, %s::text", (rejects[0].payload, rejects[0].stone_id)).fetchone())
    kept = json.loads(stored[0]) if isinstance(stored[0], str) else stored[0]  # poison: kept as JSON text
    assert json.dumps(kept, sort_keys=True) == json.dumps(_with(path, value), sort_keys=True)
