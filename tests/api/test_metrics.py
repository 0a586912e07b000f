"""/api/metrics: Prometheus text behind a bearer token, with the API's latency by route template and
its rate-limit rejections."""

from __future__ import annotations

import re

import httpx
from ports import free_port
from pydantic import SecretStr
from served import serve

from api.app import create_app
from caratflow_client import CaratflowClient


def test_metrics_need_the_token_and_show_routes_and_rejections(api_settings, database_url, issue_key, catalogue):
    settings = api_settings.model_copy(
        update={"api_metrics_token": SecretStr("scrape-me"), "api_search_rate_per_minute": 1, "api_search_burst": 3}
    )
    key = issue_key("metered", ["search"])
    port = free_port()
    server, thread = serve(create_app(settings, url=database_url), port)
    try:
        base = f"http://127.0.0.1:{port}"
        with CaratflowClient(base, key.key_id, key.secret) as client:
            stone = client.search(limit=1)["data"][0]["diamond_id"]
            client.diamond(stone)
            statuses = [client.http.get("/api/v1/diamonds", params={"limit": 1}).status_code for _ in range(4)]
        assert statuses.count(429) >= 2
        refused = httpx.get(f"{base}/api/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{base}/api/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        # The token alone, or under another scheme, is not the bearer credential.
        for given in ("scrape-me", "Basic scrape-me", "Bearerscrape-me"):
            assert httpx.get(f"{base}/api/metrics", headers={"Authorization": given}).status_code == 401, given
        assert httpx.get(f"{base}/api/metrics", headers={"Authorization": "bearer scrape-me"}).status_code == 200
        scraped = httpx.get(f"{base}/api/metrics", headers={"Authorization": "Bearer scrape-me"})
    finally:
        server.should_exit = True
        thread.join(10)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    # By route template: the stone's id never becomes a label.
    by_id = r'caratflow_api_request_duration_seconds_count\{[^}]*route="/api/v1/diamonds/\{diamond_id\}"'
    assert re.search(by_id, text)
    assert stone not in text
    limited = re.search(r'caratflow_api_rate_limited_total\{[^}]*budget="search"[^}]*\} (\d+)', text)
    assert limited is not None
    assert int(limited.group(1)) >= 2


def test_without_a_token_there_is_no_metrics_route(api, raw) -> None:
    answer = raw.get("/api/metrics", headers={"Authorization": "Bearer x"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
