"""Every fault is observable with a raw HTTP call; fault settings are replaceable at run time."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emulator import FaultSettings

COUNT = "{ diamonds_by_query_count }"
MALFORMED_PAGE = """
query ($offset: Int) {
  diamonds_by_query(offset: $offset, limit: 50) {
    items { id price diamond { id certificate { carats shape } } }
  }
}
"""


def _count(feed) -> httpx.Response:
    response: httpx.Response = feed.post(COUNT, bearer=feed.token)
    return response


def test_rate_limited_with_retry_after(feed, emulator):
    emulator.faults.replace(FaultSettings(rate_429=1.0, retry_after_seconds=7))
    response = _count(feed)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert feed.post_login().status_code == 200  # faults spare authenticate unless asked


def test_faults_on_auth_when_asked(feed, emulator):
    emulator.faults.replace(FaultSettings(rate_429=1.0, faults_on_auth=True))
    assert feed.post_login().status_code == 429


def test_server_errors_are_500_502_503(feed, emulator):
    emulator.faults.replace(FaultSettings(rate_5xx=1.0))
    responses = [_count(feed) for _ in range(30)]
    assert {r.status_code for r in responses} == {500, 502, 503}
    bad_gateway = next(r for r in responses if r.status_code == 502)
    assert bad_gateway.headers["content-type"].startswith("text/html")
    unavailable = next(r for r in responses if r.status_code == 503)
    assert unavailable.headers["retry-after"]


def test_timeout_hangs_longer_than_the_client_waits(feed, emulator):
    emulator.faults.replace(FaultSettings(rate_timeout=1.0, timeout_hang_seconds=1.0))
    with pytest.raises(httpx.ReadTimeout):
        feed.http.post(
            emulator.url, json={"query": COUNT}, headers={"Authorization": f"Bearer {feed.token}"}, timeout=0.3
        )
    started = time.perf_counter()
    patient = feed.http.post(
        emulator.url, json={"query": COUNT}, headers={"Authorization": f"Bearer {feed.token}"}, timeout=5
    )
    assert time.perf_counter() - started >= 1.0
    assert patient.json() == {"data": {"diamonds_by_query_count": emulator.inventory.truth()}}


def test_malformed_json_body(feed, emulator):
    emulator.faults.replace(FaultSettings(rate_malformed_json=1.0))
    response = _count(feed)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_graphql_internal_error(feed, emulator):
    emulator.faults.replace(FaultSettings(rate_graphql_error=1.0))
    response = _count(feed)
    assert response.status_code == 200
    assert response.json() == {
        "errors": [{"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]
    }


def test_expired_token_fault(feed, emulator):
    emulator.faults.replace(FaultSettings(rate_expired_token=1.0))
    body = _count(feed).json()
    assert body["errors"][0] == {
        "message": "Unauthorized: token expired or invalid",
        "locations": [{"line": 1, "column": 3}],
        "path": ["diamonds_by_query_count"],
        "extensions": {"code": "UNAUTHENTICATED"},
    }


def test_latency(feed, emulator):
    emulator.faults.replace(FaultSettings(latency_ms=150, latency_jitter_ms=50))
    started = time.perf_counter()
    assert _count(feed).status_code == 200
    assert 0.15 <= time.perf_counter() - started < 2.0


def test_mixed_rates_and_stats(feed, emulator):
    before = emulator.stats.snapshot()["requests"].get("data", {})
    emulator.faults.replace(FaultSettings(rate_429=0.2, rate_graphql_error=0.2, rate_malformed_json=0.2))
    statuses = Counter(_count(feed).status_code for _ in range(200))
    assert 20 < statuses[429] < 60
    stats = httpx.get(f"{emulator.base_url}/_emulator/stats").json()
    data = stats["requests"]["data"]
    for outcome in ("rate_limited", "graphql_error", "malformed_json", "ok"):
        assert data.get(outcome, 0) > before.get(outcome, 0)
    assert stats["counts_answered"] > 0


def test_fault_settings_over_http(feed, emulator):
    url = f"{emulator.base_url}/_emulator/faults"
    put = feed.http.put(url, json={"rate_429": 0.5, "latency_ms": 10})
    assert put.status_code == 200
    assert feed.http.get(url).json()["rate_429"] == 0.5
    assert emulator.faults.settings.latency_ms == 10
    patched = feed.http.patch(url, json={"rate_5xx": 0.25}).json()
    assert (patched["rate_429"], patched["rate_5xx"]) == (0.5, 0.25)
    for bad in ({"rate_429": 2}, {"rate_429": 0.6, "rate_5xx": 0.6}, {"no_such_fault": 1}, {"latency_ms": -1}):
        response = feed.http.put(url, json=bad)
        assert response.status_code == 422, bad
        assert response.json()["detail"]
    assert feed.http.get(url).json()["rate_5xx"] == 0.25  # refused settings change nothing


def _served(feed) -> dict[str, dict[str, Any]]:
    by_offer: dict[str, dict[str, Any]] = {}
    offset = 0
    while items := feed.data(MALFORMED_PAGE, {"offset": offset}, bearer=feed.token)["diamonds_by_query"]["items"]:
        by_offer.update({i["id"]: i for i in items})
        offset += len(items)
    return by_offer


BROKEN: dict[str, Callable[[dict[str, Any]], bool]] = {
    "missing_certificate": lambda i: i["diamond"]["certificate"] is None,
    "negative_price": lambda i: isinstance(i["price"], int) and i["price"] < 0,
    "text_price": lambda i: isinstance(i["price"], str),
    "null_carats": lambda i: i["diamond"]["certificate"]["carats"] is None,
    "text_carats": lambda i: i["diamond"]["certificate"]["carats"] == "abc",
    "missing_stone_id": lambda i: i["diamond"]["id"] is None,
    "unknown_shape": lambda i: i["diamond"]["certificate"]["shape"] == "TRILLIANT-X",
}


def test_malformed_items_are_a_fixed_set_broken_in_varied_ways(feed, emulator):
    url = f"{emulator.base_url}/_emulator/malformed"
    emulator.faults.replace(FaultSettings(malformed_item_rate=0.05, short_page_rate=0.0))
    listed = feed.http.get(url).json()["stones"]
    assert 0.03 * emulator.inventory.truth() < len(listed) < 0.07 * emulator.inventory.truth()
    served = _served(feed)
    kinds = {stone["offer_id"]: stone["kind"] for stone in listed}
    assert set(Counter(kinds.values())) == set(BROKEN)
    for offer, item in served.items():
        if offer in kinds:
            assert BROKEN[kinds[offer]](item), (kinds[offer], item)
        else:
            assert isinstance(item["price"], int)
            assert item["price"] > 0
            assert isinstance(item["diamond"]["certificate"]["carats"], float)
            assert item["diamond"]["id"]
    assert _served(feed) == served  # the same stones, broken the same way, every time
    emulator.faults.replace(FaultSettings(malformed_item_rate=0.10, short_page_rate=0.0))
    more = {stone["offer_id"] for stone in feed.http.get(url).json()["stones"]}
    assert set(kinds) < more  # raising the rate only adds stones
