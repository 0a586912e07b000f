"""Every error path answers with the one problem+json envelope and a correlation id."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

PROBLEM_KEYS = {"type", "title", "status", "detail", "hint", "correlation_id"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["type"] == f"urn:caratflow:problem:{slug}"
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    return body


@pytest.mark.parametrize(
    "params",
    [
        {"colour": "D"},  # unknown parameter (the column is `color`)
        {"shape": "TRIANGLE"},  # bad enum
        {"carats_min": "2", "carats_max": "1"},  # reversed range
        {"carats_max": "5000"},  # absurd range
        {"price_cents_min": "-1"},
        {"limit": "0"},
        {"limit": "201"},  # above the maximum page size
        {"sort": "cost_cents"},  # not a sort key (and a column callers never see)
        {"fields": "everything"},
        {"lab_grown": "perhaps"},
    ],
)
def test_bad_parameters_are_400_with_the_envelope(client, params) -> None:
    body = assert_problem(client.http.get("/api/v1/diamonds", params=params), 400, "invalid-request")
    assert body["detail"]


def test_unknown_routes_and_methods(client, raw) -> None:
    assert_problem(raw.get("/api/v1/rubies"), 404, "not-found")
    assert_problem(raw.get("/"), 404, "not-found")
    assert_problem(client.http.delete("/api/v1/diamonds"), 405, "method-not-allowed")


def test_a_trailing_slash_is_not_redirected_anywhere(client, raw) -> None:
    # Starlette would answer 307 to http://<the Host header>/api/v1/diamonds: an open redirect.
    for http in (raw, client.http):
        answer = http.get("/api/v1/diamonds/", headers={"Host": "evil.example"}, follow_redirects=False)
        assert_problem(answer, 404, "not-found")
        assert "location" not in answer.headers


def test_oversized_bodies_are_refused_while_read(client, api) -> None:
    limit = api.settings.api_max_body_bytes
    declared = client.http.post("/api/v1/diamonds", content=b"x" * (limit + 1))
    assert_problem(declared, 413, "body-too-large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies as the body streams in
        for _ in range(limit // 1024 + 2):
            yield b"y" * 1024

    streamed = client.http.post("/api/v1/diamonds", content=chunks())
    assert_problem(streamed, 413, "body-too-large")


def test_correlation_id_is_taken_or_made_and_on_every_log_line(client, raw, caplog) -> None:
    caplog.set_level(logging.INFO)
    given = client.http.get("/api/v1/diamonds", params={"limit": 1}, headers={"X-Correlation-Id": "order-4711"})
    assert given.headers["x-correlation-id"] == "order-4711"
    assert "request" in _messages_with(caplog, "order-4711", until="request")
    failed = raw.get("/api/v1/diamonds", headers={"X-Correlation-Id": "bad id with spaces"})
    made = failed.headers["x-correlation-id"]
    assert made != "bad id with spaces"
    assert len(made) == 32
    assert "authentication failed" in _messages_with(caplog, made, until="request")
    # every record logged by the API while serving a request carries its id
    api_lines = [r for r in caplog.records if r.name.startswith("caratflow.api")]
    assert all(getattr(r, "correlation_id", None) for r in api_lines)


def _messages_with(caplog, correlation: str, *, until: str) -> set[str]:
    """Messages logged with this correlation id, once `until` is among them (the access line is
    written after the response has gone out, so it can trail the client by a moment)."""
    deadline = time.monotonic() + 5
    while True:
        found = {r.getMessage() for r in caplog.records if getattr(r, "correlation_id", None) == correlation}
        if until in found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_secret_store_failure_is_a_500_envelope_not_a_401(client, api, search_key) -> None:
    # The key was issued, but its secret is not cached yet: the first request reads the store.
    api.settings.local_secrets_path.write_text("{ not json")
    body = assert_problem(client.http.get("/api/v1/diamonds", params={"limit": 1}), 500, "internal-error")
    assert "not json" not in body["detail"]


def test_security_headers(raw) -> None:
    response = raw.get("/api/health")
    assert response.json() == {"status": "ok"}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    docs = raw.get("/api/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    document = raw.get("/api/openapi.json")
    assert document.json()["info"]["title"] == "caratflow search API"
    # The public document names no supplier: feed names are the suppliers' (docs/security.md).
    from shared.feed.registry import FEEDS

    assert not [name for name in FEEDS if name in document.text]
    assert "nivoda" not in document.text.lower()
