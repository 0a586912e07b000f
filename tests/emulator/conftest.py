"""Fixtures for the emulator's tests: real HTTP to a RunningEmulator on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from emulator import EmulatorConfig, RunningEmulator

FULL_ITEM = """
  id price discount diamond_price markup_price markup_discount
  diamond {
    id availability HoldId NivodaStockId supplierStockId image video v360 { url }
    eyeClean brown green blue gray milky mine_of_origin return_window
    delivery_time { min_business_days max_business_days express_timeline_applicable }
    supplier { id name legal_name }
    certificate {
      id lab certNumber pdfUrl shape carats color clarity cut polish symmetry floInt floCol
      length width depth depthPercentage table girdle culetSize crownAngle crownHeight pavAngle pavDepth
      labgrown labgrown_type treated f_color f_intensity f_overtone
    }
  }
"""

PAGE_QUERY = f"""
query Page($token: String!, $query: DiamondQuery, $offset: Int, $limit: Int, $order: DiamondOrder) {{
  as(token: $token) {{
    diamonds_by_query(query: $query, offset: $offset, limit: $limit, order: $order) {{
      total_count
      items {{ {FULL_ITEM} }}
    }}
  }}
}}
"""

COUNT_QUERY = """
query Count($token: String!, $query: DiamondQuery) {
  as(token: $token) { diamonds_by_query_count(query: $query) }
}
"""


@dataclass
class Feed:
    """A small GraphQL client for tests: login, raw posts, counts, and paging to the empty page."""

    emulator: RunningEmulator
    http: httpx.Client
    token: str = ""
    pages: list[int] = field(default_factory=list)

    def post(self, query: str, variables: dict[str, Any] | None = None, *, bearer: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return self.http.post(self.emulator.url, json={"query": query, "variables": variables or {}}, headers=headers)

    def data(self, query: str, variables: dict[str, Any] | None = None, *, bearer: str | None = None) -> Any:
        response = self.post(query, variables, bearer=bearer)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def post_login(self) -> httpx.Response:
        config = self.emulator.config
        user, password = json.dumps(config.username), json.dumps(config.password.get_secret_value())
        return self.post(
            f"{{ authenticate {{ username_and_password(username: {user}, password: {password}) {{ token }} }} }}"
        )

    def login(self) -> str:
        response = self.post_login()
        assert response.status_code == 200, response.text
        self.token = response.json()["data"]["authenticate"]["username_and_password"]["token"]
        return self.token

    def count(self, query: dict[str, Any] | None = None) -> int:
        count: int = self.data(COUNT_QUERY, {"token": self.token, "query": query})["as"]["diamonds_by_query_count"]
        return count

    def page(
        self, query: dict[str, Any] | None, offset: int, limit: int = 50, order: dict[str, str] | None = None
    ) -> dict[str, Any]:
        variables = {"token": self.token, "query": query, "offset": offset, "limit": limit, "order": order}
        page: dict[str, Any] = self.data(PAGE_QUERY, variables)["as"]["diamonds_by_query"]
        return page

    def all_items(
        self, query: dict[str, Any] | None = None, order: dict[str, str] | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Every item, paging by the number received until a page comes back empty."""
        items: list[dict[str, Any]] = []
        self.pages = []
        while True:
            got = self.page(query, len(items), limit, order)["items"]
            self.pages.append(len(got))
            if not got:
                return items
            items.extend(got)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    """A small emulator per test module, quirks off so results are exact unless a test turns them on."""
    config = EmulatorConfig(port=0, size=3_000, seed=11, short_page_rate=0.0)
    with RunningEmulator(config) as running:
        yield running


@pytest.fixture(scope="module")
def module_feed(emulator: RunningEmulator) -> Iterator[Feed]:
    """A logged-in client shared by a module's fixtures (say, a catalogue fetched once)."""
    with httpx.Client(timeout=10.0) as http:
        client = Feed(emulator, http)
        client.login()
        yield client


@pytest.fixture
def feed(emulator: RunningEmulator) -> Iterator[Feed]:
    """A logged-in client; the emulator's fault settings are restored after each test."""
    before = emulator.faults.settings
    with httpx.Client(timeout=10.0) as http:
        client = Feed(emulator, http)
        client.login()
        yield client
    emulator.faults.replace(before)
