"""Every query parameter, path parameter and operator body of the API, fed hostile values, signed:
the answer is 2xx or a 4xx problem document, never a 5xx.

The operations and their parameters come from the served OpenAPI document, so a route added later is
covered without editing this file. Each parameter first gets every value of a fixed list of known
troublemakers (NUL, lone surrogates, NaN, overflowing numbers, huge strings...), then hypothesis
draws arbitrary unicode for any mix of them. The app runs with the local host's durable client, as
under `caratflow serve`, so operator bodies are validated rather than refused for want of a client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ports import free_port
from served import serve

from api.app import create_app
from api.request_head import http_protocol
from caratflow_client.signing import sign_request
from local_host.client import AsyncLocalClient
from local_host.runtime import LocalRuntime

TROUBLE = [
    "\x00",
    "stop\x00now",
    "\ud800",
    "a\udfffb",
    "\ufffe",
    "\x1b[31m",
    "NaN",
    "-Infinity",
    "1E+999999",
    "-1",
    "9" * 40,
    "",
    " ",
    "x" * 5000,
    "ROUND\u0301",
    "\uff52\uff4f\uff55\uff4e\uff44",  # fullwidth "round"
    "🦄" * 50,
    "../../etc/passwd",
    "'; DROP TABLE diamonds; --",
    "%00",
]
# JSON values a body field may get besides text: wrong types, nesting, overflow.
JSON_TROUBLE: list[Any] = [None, True, 0, -1, 10**30, 1.5, [], {}, ["a"], {"$gt": ""}, float("nan"), float("inf")]
text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300) | st.sampled_from(TROUBLE)


def _encode(value: str) -> str:
    # Lone surrogates have no UTF-8 form; surrogatepass sends the bytes a careless client would.
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


class Operation:
    def __init__(self, method: str, path: str, spec: dict[str, Any], components: dict[str, Any]) -> None:
        self.method, self.path = method.upper(), path
        params = spec.get("parameters", [])
        self.query = [p["name"] for p in params if p["in"] == "query"]
        self.path_params = [p["name"] for p in params if p["in"] == "path"]
        self.body_fields: list[str] = []
        body = spec.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            self.body_fields = list(_resolve(body, components).get("properties", {}))

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    for option in [schema, *schema.get("anyOf", []), *schema.get("allOf", [])]:
        if "$ref" in option:
            referred: dict[str, Any] = components[option["$ref"].rsplit("/", 1)[-1]]
            return referred
        if "properties" in option:
            found: dict[str, Any] = option
            return found
    return {}


@pytest.fixture
def hostile(api_settings, pool, database_url, issue_key) -> Iterator[tuple[httpx.Client, Any, list[Operation]]]:
    settings = api_settings.model_copy(update={"api_mutation_rate_per_minute": 100_000, "api_mutation_burst": 10_000})
    key = issue_key("hostile", ["search", "admin"])
    with LocalRuntime(settings, pool=pool) as runtime:
        app = create_app(settings, url=database_url, durable=AsyncLocalClient(runtime.client))
        port = free_port()
        server, thread = serve(app, port, http=http_protocol(settings))
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                document = http.get("/api/openapi.json").json()
                components = document.get("components", {}).get("schemas", {})
                operations = [
                    Operation(method, path, spec, components)
                    for path, methods in document["paths"].items()
                    for method, spec in methods.items()
                ]
                yield http, key, operations
        finally:
            server.should_exit = True
            thread.join(10)


def _send(
    http: httpx.Client,
    key: Any,
    op: Operation,
    query: dict[str, str],
    path_values: dict[str, str],
    body: bytes | None,
) -> httpx.Response:
    path = op.path
    for name in op.path_params:
        path = path.replace("{" + name + "}", _encode(path_values.get(name, str(uuid.uuid4()))))
    raw_query = "&".join(f"{_encode(name)}={_encode(value)}" for name, value in query.items())
    content_type = "application/json" if body is not None else ""
    signature = sign_request(
        key_id=key.key_id,
        secret=key.secret,
        method=op.method,
        path=path,
        query=raw_query,
        content_type=content_type,
        body=body or b"",
    )
    headers = {"Authorization": signature.header()} | ({"Content-Type": content_type} if content_type else {})
    url = path + (f"?{raw_query}" if raw_query else "")
    return http.request(op.method, url, headers=headers, content=body)


def _check(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", what
        assert response.json()["status"] == response.status_code, what


def _body(fields: dict[str, Any]) -> bytes:
    # ensure_ascii: a lone surrogate travels as the escape "\ud800", which is valid JSON text;
    # allow_nan: NaN and Infinity as the bare literals a careless client sends.
    return json.dumps(fields, ensure_ascii=True, allow_nan=True).encode()


def test_every_parameter_and_body_field_refuses_each_troublemaker(hostile) -> None:
    http, key, operations = hostile
    checked = 0
    for op in operations:
        for value in TROUBLE:
            for name in op.query:
                _check(_send(http, key, op, {name: value}, {}, None), f"{op} ?{name}={value[:20]!r}")
                checked += 1
            for name in op.path_params:
                _check(_send(http, key, op, {}, {name: value}, None), f"{op} /{{{name}}}={value[:20]!r}")
                checked += 1
            for name in op.body_fields:
                _check(_send(http, key, op, {}, {}, _body({name: value})), f"{op} body {name}={value[:20]!r}")
                checked += 1
        for value in JSON_TROUBLE:
            for name in op.body_fields:
                _check(_send(http, key, op, {}, {}, _body({name: value})), f"{op} body {name}={value!r}")
        if op.body_fields:
            for raw in (b"{", b"[]", b"null", b'{"a":1,"a":2}', b"\xff\xfe", b'{"reason":"\\u0000"}', b"1e999999"):
                _check(_send(http, key, op, {}, {}, raw), f"{op} raw body {raw!r}")
    # the document was read and reached the routes that matter
    assert checked > 500
    assert {"GET /api/v1/diamonds", "POST /api/v1/runs/{run_id}/cancel"} <= {repr(op) for op in operations}


@pytest.mark.slow
def test_arbitrary_unicode_anywhere_is_never_a_server_error(hostile) -> None:
    http, key, operations = hostile

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data) -> None:
        op = data.draw(st.sampled_from([op for op in operations if op.query or op.path_params or op.body_fields]))
        names = st.lists(st.sampled_from(op.query), unique=True, max_size=4) if op.query else st.just([])
        query = {name: data.draw(text) for name in data.draw(names)}
        path_values = {name: data.draw(text) for name in op.path_params if data.draw(st.booleans())}
        body = None
        if op.body_fields:
            fields = {name: data.draw(text | st.sampled_from(JSON_TROUBLE)) for name in op.body_fields}
            body = _body(fields)
        _check(_send(http, key, op, query, path_values, body), f"{op} {query!r} {path_values!r} {body!r}"[:400])

    run()
