"""The inventory: deterministic, realistic, and changing over time through ticks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from emulator import Inventory, RunningEmulator, identity
from emulator.config import EmulatorConfig
from emulator.state import EmulatorState

PAGE = """
query ($query: DiamondQuery, $offset: Int) {
  diamonds_by_query(query: $query, offset: $offset, limit: 50) {
    items { id price diamond { id availability certificate { certNumber carats shape cut color floInt } } }
  }
}
"""


def _page(seed: int, size: int = 500, offset: int = 0) -> list[dict[str, Any]]:
    state = EmulatorState.build(EmulatorConfig(size=size, seed=seed))
    token = state.tokens.login(state.config.username, state.config.password.get_secret_value())
    prepared = state.service.prepare(PAGE, {"offset": offset}, None)
    items: list[dict[str, Any]] = state.service.execute(prepared, token)["data"]["diamonds_by_query"]["items"]
    return items


def test_same_seed_same_items_different_seed_different_items():
    assert _page(seed=3) == _page(seed=3)
    other = _page(seed=4)
    assert {i["diamond"]["id"] for i in other}.isdisjoint({i["diamond"]["id"] for i in _page(seed=3)})


def test_a_smaller_inventory_is_a_prefix_of_a_larger_one():
    assert _page(seed=3, size=500, offset=100) == _page(seed=3, size=5_000, offset=100)


def test_identifiers_are_unique():
    inventory = Inventory.generate(size=50_000, seed=9)
    everyone = np.arange(len(inventory))
    assert len(set(inventory.stone_ids(everyone))) == len(inventory)
    cols = inventory.columns
    numbers = identity.certificate_numbers(inventory.hasher, everyone, cols.lab, cols.labgrown)
    assert len(set(numbers)) == len(inventory)


def test_grades_come_in_varied_spellings():
    items = _page(seed=3, size=3_000) + _page(seed=3, size=3_000, offset=50) + _page(seed=3, size=3_000, offset=100)
    cuts = {i["diamond"]["certificate"]["cut"] for i in items}
    fluorescence = {i["diamond"]["certificate"]["floInt"] for i in items}
    shapes = {i["diamond"]["certificate"]["shape"] for i in items}
    assert {"EX", "EXCELLENT", "Excellent"} <= cuts
    assert {"NONE", "None", "NON"} <= fluorescence
    assert len(shapes) > 10


def test_distributions_are_realistic():
    inventory = Inventory.generate(size=200_000, seed=7)
    cols = inventory.columns
    per_carat = cols.price_cents / cols.carats_h  # dollars per carat
    natural, grown = per_carat[~cols.labgrown], per_carat[cols.labgrown]
    assert 0.5 < cols.labgrown.mean() < 0.6
    assert np.mean(natural < 5_000) > 0.6
    assert natural.max() > 50_000
    assert np.median(grown) < 250
    assert grown.max() > 1_000
    carats = cols.carats_h / 100
    assert np.mean((carats >= 0.3) & (carats <= 2)) > 0.7
    assert carats.max() > 10
    shares = np.bincount(cols.shape, minlength=10) / len(inventory)
    assert 0.45 < shares[0] < 0.55  # ROUND
    assert np.all(shares > 0.01)
    assert 0.01 < np.mean(cols.color < 0) < 0.05  # fancy colours
    assert np.mean(cols.availability == 0) > 0.85
    assert np.issubdtype(cols.price_cents.dtype, np.integer)
    end = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert cols.updated_ms.max() < end
    assert cols.updated_ms.min() >= end - 90 * 86_400_000


@pytest.fixture
def emulator():
    """A fresh emulator per test (overrides the module one): ticks change its inventory."""
    with RunningEmulator(EmulatorConfig(port=0, size=2_000, seed=21, short_page_rate=0.0)) as running:
        yield running


def _by_stone(feed, query=None) -> dict[str, dict[str, Any]]:
    return {item["diamond"]["id"]: item for item in feed.all_items(query)}


def test_ticks_sell_reprice_add_and_hold(feed):
    before = _by_stone(feed)
    summary = feed.emulator.inventory.tick(sold=20, repriced=30, added=40, held=0.01)
    after = _by_stone(feed)
    assert len(summary.sold) == 20
    assert len(summary.repriced) == 30
    assert len(summary.added) == 40
    assert len(summary.held) == 20  # 1 % of 2,000 live stones
    assert set(after) == (set(before) - set(summary.sold)) | set(summary.added)
    for stone in summary.repriced:
        assert after[stone]["price"] != before[stone]["price"]
    for stone in summary.held:
        assert after[stone]["diamond"]["availability"] != before[stone]["diamond"]["availability"]
    untouched = set(before) - summary.changed - set(summary.sold)
    assert all(after[s] == before[s] for s in untouched)  # no other stone shifted, in any field

    since = {"updated": {"from": summary.to_dict()["at"]}}
    assert set(_by_stone(feed, since)) == summary.changed
    truth = feed.http.get(f"{feed.emulator.base_url}/_emulator/truth").json()
    assert truth["count"] == feed.count() == 2_000 - 20 + 40


def test_ticks_are_deterministic_from_seed_and_tick_number():
    def run() -> list[dict[str, Any]]:
        inventory = Inventory.generate(size=3_000, seed=5)
        moment = datetime(2026, 2, 1, tzinfo=UTC)
        return [inventory.tick(sold=5, repriced=5, added=5, held=5, now=moment).to_dict() for _ in range(2)]

    assert run() == run()


def test_tick_over_admin_endpoint_and_refusals(feed):
    url = f"{feed.emulator.base_url}/_emulator/tick"
    summary = feed.http.post(url, json={"sold": 3, "added": 0.01}).json()
    assert len(summary["sold"]) == 3
    assert len(summary["added"]) == 20
    assert summary["tick"] == 1
    for refused in ({"sold": 10**6}, {"sold": -1}, {"sould": 1}):
        assert feed.http.post(url, json=refused).status_code == 422
    health = feed.http.get(f"{feed.emulator.base_url}/_emulator/health").json()
    assert health["ticks"] == 1
    assert health["live"] == 2_000 - 3 + 20
