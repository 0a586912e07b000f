"""Hostile input to every pricing route, signed with a pricing key: 2xx or a 4xx problem, never a 5xx.

tests/api/test_hostile_input.py covers every route with a search and admin key, which the pricing routes
refuse (403) before reading a parameter; this runs its troublemakers (loaded from that module, not copied)
past the scope check, into the pricing routes' parameters, bodies and the fields nested in them.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import free_port
from served import serve

from api.app import create_app
from api.request_head import http_protocol
from local_host.client import AsyncLocalClient
from local_host.runtime import LocalRuntime

_spec = importlib.util.spec_from_file_location("hostile_input", Path(__file__).with_name("test_hostile_input.py"))
assert _spec is not None
assert _spec.loader is not None
hostile_input: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile_input)

# Values for the fields inside a rule, the defaults and a quoted stone.
NESTED: list[Any] = [
    *hostile_input.TROUBLE[:14],
    *hostile_input.JSON_TROUBLE,
    "1e400",
    "-1e400",
    "0.0001",
    2**63,
    -(2**63) - 1,
    2**31,
]
RULE = {"priority": 1, "name": "all", "markup_percent": "10"}
STONE = {"feed": "nivoda-natural", "shape": "ROUND", "carats": "1.01", "cost_cents": 100_000}


@pytest.fixture
def pricing_hostile(api_settings, pool, database_url, issue_key) -> Iterator[tuple[httpx.Client, Any, list[Any]]]:
    settings = api_settings.model_copy(update={"api_mutation_rate_per_minute": 100_000, "api_mutation_burst": 10_000})
    key = issue_key("pricer", ["pricing"])
    with LocalRuntime(settings, pool=pool) as runtime:
        app = create_app(settings, url=database_url, durable=AsyncLocalClient(runtime.client))
        port = free_port()
        server, thread = serve(app, port, http=http_protocol(settings))
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                document = http.get("/api/openapi.json").json()
                components = document.get("components", {}).get("schemas", {})
                operations = [
                    hostile_input.Operation(method, path, spec, components)
                    for path, methods in document["paths"].items()
                    if path.startswith("/api/v1/pricing")
                    for method, spec in methods.items()
                ]
                yield http, key, operations
        finally:
            server.should_exit = True
            thread.join(10)


def _send(http: httpx.Client, key: Any, op: Any, body: Any = None, **query: str) -> httpx.Response:
    raw = None if body is None else json.dumps(body, ensure_ascii=True, allow_nan=True).encode()
    response: httpx.Response = hostile_input._send(http, key, op, query, {"version": "1"}, raw)
    return response


@pytest.mark.slow
def test_every_pricing_parameter_and_body_field_refuses_each_troublemaker(pricing_hostile) -> None:
    http, key, operations = pricing_hostile
    check = hostile_input._check
    assert len(operations) >= 15
    checked = 0
    for op in operations:
        for value in hostile_input.TROUBLE:
            for name in op.query:
                check(hostile_input._send(http, key, op, {name: value}, {}, None), f"{op} ?{name}={value[:20]!r}")
            for name in op.path_params:
                check(hostile_input._send(http, key, op, {}, {name: value}, None), f"{op} /{name}={value[:20]!r}")
            for name in op.body_fields:
                check(_send(http, key, op, {name: value}), f"{op} body {name}={value[:20]!r}")
            checked += len(op.query) + len(op.path_params) + len(op.body_fields)
        for value in hostile_input.JSON_TROUBLE:
            for name in op.body_fields:
                check(_send(http, key, op, {name: value}), f"{op} body {name}={value!r}")
    assert checked > 300


@pytest.mark.slow
def test_fields_inside_rules_defaults_and_stones_refuse_each_troublemaker(pricing_hostile) -> None:
    http, key, operations = pricing_hostile
    by_name = {repr(op): op for op in operations}
    create, quote = by_name["POST /api/v1/pricing/sets"], by_name["POST /api/v1/pricing/quote"]
    edit = by_name["PUT /api/v1/pricing/sets/{version}"]
    draft = _send(http, key, create, {"rules": [RULE]})
    assert draft.status_code == 201, draft.text
    edit.path = edit.path.replace("{version}", str(draft.json()["pricing_version"]))
    edit.path_params = []
    rule_fields = [*RULE, "stone_type", "feed", "shapes", "labs", "colors", "clarities", "carats_min", "carats_max",
                   "cost_min_cents", "cost_max_cents", "markup_cents", "rounding", "rounding_step_cents",
                   "rounding_ending_cents", "floor_cents", "floor_percent", "rule_id"]  # fmt: skip
    adjustments = ["rounding", "rounding_step_cents", "rounding_ending_cents", "floor_cents", "floor_percent"]
    for value in NESTED:
        for name in rule_fields:
            for listed in (value, [value]):
                body = {"rules": [{**RULE, name: listed}]}
                hostile_input._check(_send(http, key, edit, body), f"rule {name}={listed!r:.40}")
        for name in adjustments:
            hostile_input._check(
                _send(http, key, create, {"defaults": {name: value}}), f"defaults {name}={value!r:.40}"
            )
        for name in [*STONE, "lab_grown", "fancy_color", "lab", "color", "clarity"]:
            hostile_input._check(
                _send(http, key, quote, {"stone": {**STONE, name: value}}), f"stone {name}={value!r:.40}"
            )
    # A huge cost with a huge markup: a price beyond bigint is refused, not a crash.
    huge = {"pricing_version": 1, "stone": {**STONE, "cost_cents": 2**63 - 1}}
    assert _send(http, key, quote, huge).status_code in (200, 422)
    many = {"rules": [{**RULE, "priority": n, "name": f"r{n}"} for n in range(501)]}
    assert _send(http, key, create, many).status_code == 400
