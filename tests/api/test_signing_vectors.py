"""The signature's worked examples (caratflow_client/signing_vectors.json), from both sides: the
client's code reproduces each one, and the served API verifies each path exactly as it was sent on
the wire, while a signature for one path never verifies another that only a second decoding, or URL
parsing that drops control characters, would make equal."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path

import pytest

import caratflow_client
from caratflow_client import signing

VECTORS = json.loads((Path(caratflow_client.__file__).parent / "signing_vectors.json").read_text())["vectors"]
GET_VECTORS = [v for v in VECTORS if v["method"] == "GET"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_client_reproduces_every_vector(vector) -> None:
    assert signing.canonical_path(vector["path_as_sent"]) == vector["canonical_path"]
    assert signing.canonical_path(vector["path_as_sent"].encode()) == vector["canonical_path"]
    assert signing.canonical_query(vector["query_as_sent"]) == vector["canonical_query"]
    made = signing.sign_request(
        key_id=vector["key_id"],
        secret=vector["secret"],
        method=vector["method"],
        path=vector["path_as_sent"],
        query=vector["query_as_sent"],
        content_type=vector["content_type"],
        body=vector["body"].encode(),
        timestamp=vector["timestamp"],
        nonce=vector["nonce"],
    )
    assert made.signature == vector["signature"]


def _send_raw(api_url: str, target: str, authorization: str) -> int:
    """GET `target` byte for byte (http.client sends the request line as given; httpx would normalise it)."""
    host, port = api_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        connection.putheader("Authorization", authorization)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def _signed(key, path: str, query: str = "") -> str:
    return signing.sign_request(
        key_id=key.key_id, secret=key.secret, method="GET", path=path, query=query, timestamp=int(time.time())
    ).header()


@pytest.mark.parametrize("vector", GET_VECTORS, ids=[v["name"] for v in GET_VECTORS])
def test_the_api_verifies_every_path_as_sent(api, issue_key, vector) -> None:
    key = issue_key("vectors", ["search", "admin"])
    query = vector["query_as_sent"]
    target = vector["path_as_sent"] + (f"?{query}" if query else "")
    status = _send_raw(api.url, target, _signed(key, vector["path_as_sent"], query))
    # Authenticated: whatever the route then says (200, 400 for an id that is not one, 404), never 401.
    assert status != 401, target
    assert status < 500, target


@pytest.mark.parametrize(
    ("signed_for", "sent"),
    [
        ("/api/v1/runs/ab", "/api/v1/runs/a%0Ab"),  # URL parsing drops a decoded LF
        ("/api/v1/runs/ab", "/api/v1/runs/a%09b"),  # ...and a TAB
        ("/api/v1/runs/a%25b", "/api/v1/runs/a%2525b"),  # equal only when decoded twice
        ("/api/v1/runs/a%2525b", "/api/v1/runs/a%25b"),
        ("/api/v1/diamonds/%FF", "/api/v1/diamonds/%FE"),  # both decode to U+FFFD as text
    ],
)
def test_a_signature_for_one_path_never_verifies_another(api, issue_key, signed_for, sent) -> None:
    key = issue_key("vectors", ["search", "admin"])
    assert _send_raw(api.url, sent, _signed(key, signed_for)) == 401
    assert _send_raw(api.url, sent, _signed(key, sent)) != 401
